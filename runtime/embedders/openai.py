"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM pooling, TEI, OpenAI)."""

from __future__ import annotations

import msgspec

from runtime.errors import BackendUnavailable
from runtime.http import OpenAIEndpoint


class _Item(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _Embeddings(msgspec.Struct):
    data: list[_Item] = []


class OpenAIEmbedder:
    def __init__(self, *, base_url: str, model: str, dims: int, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 30.0):
        self.dims = dims
        self._model = model
        self._endpoint = OpenAIEndpoint(base_url, what="embeddings endpoint", backend="embedder",
                                        api_key_env=api_key_env, timeout_s=timeout_s, retries=2)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        response = await self._endpoint.post("embeddings", {"model": self._model, "input": texts}, _Embeddings)
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts):
            raise BackendUnavailable(f"embeddings endpoint returned {len(vectors)} vectors for {len(texts)} texts",
                                     backend="embedder")
        return vectors

    async def close(self) -> None:
        await self._endpoint.close()
