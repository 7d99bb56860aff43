"""Any OpenAI-compatible chat endpoint (vLLM serve, llama.cpp, Ollama, OpenAI), over ``runtime.http``."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec

from runtime.errors import LLMOutputError
from runtime.http import OpenAIEndpoint


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    """The part of a chat completion memstream reads; everything else is ignored."""

    choices: list[_Choice] = []


class OpenAICompatibleLLM:
    def __init__(self, *, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 json_mode: str = "json_schema", temperature: float = 0.0, max_tokens: int = 512,
                 timeout_s: float = 60.0, max_concurrency: int = 256):
        self._endpoint = OpenAIEndpoint(base_url, what="LLM endpoint", backend="llm", api_key_env=api_key_env,
                                        timeout_s=timeout_s, max_connections=max_concurrency)
        self._model = model
        self._json_mode = json_mode
        self._temperature = temperature
        self._max_tokens = max_tokens
        # calls wait here, not in the connection pool, so the per-call timeout only runs once a call is sent
        self._slots = anyio.Semaphore(max_concurrency, fast_acquire=True)

    def _response_format(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        if self._json_mode == "json_object":  # llama.cpp's server rejects json_schema but takes this
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        body = {"model": self._model, "messages": messages, "temperature": self._temperature,
                "max_tokens": self._max_tokens, "response_format": self._response_format(schema, name)}
        async with self._slots:
            completion = await self._endpoint.post("chat/completions", body, _Completion)
        if not completion.choices or completion.choices[0].message.content is None:
            raise LLMOutputError("LLM endpoint returned no content")
        return completion.choices[0].message.content

    async def close(self) -> None:
        await self._endpoint.close()
