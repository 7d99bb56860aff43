"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM pooling, TEI, OpenAI)."""

from __future__ import annotations

import os

import openai

from runtime.errors import BackendUnavailable


class OpenAIEmbedder:
    def __init__(self, *, base_url: str, model: str, dims: int, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 30.0):
        self.dims = dims
        self._model = model
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "none",
                                          timeout=timeout_s, max_retries=2)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            response = await self._client.embeddings.create(model=self._model, input=texts)
        except openai.APIError as exc:
            raise BackendUnavailable(f"embeddings endpoint failed: {exc}", backend="embedder") from exc
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts):
            raise BackendUnavailable(f"embeddings endpoint returned {len(vectors)} vectors for {len(texts)} texts",
                                     backend="embedder")
        return vectors

    async def close(self) -> None:
        await self._client.close()
