"""Any OpenAI-compatible chat endpoint (vLLM serve, llama.cpp, Ollama, OpenAI) via the openai SDK."""

from __future__ import annotations

import os
from typing import Any

import anyio
import openai

from runtime.errors import BackendUnavailable, LLMOutputError


class OpenAICompatibleLLM:
    def __init__(self, *, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 json_mode: str = "json_schema", temperature: float = 0.0, max_tokens: int = 512,
                 timeout_s: float = 60.0, max_concurrency: int = 64):
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "none",
                                          timeout=timeout_s, max_retries=1)
        self._model = model
        self._json_mode = json_mode
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._slots = anyio.Semaphore(max_concurrency)

    def _response_format(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        if self._json_mode == "json_object":  # llama.cpp's server rejects json_schema but takes this
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        async with self._slots:
            try:
                response = await self._client.chat.completions.create(
                    model=self._model, messages=messages, temperature=self._temperature,
                    max_tokens=self._max_tokens, response_format=self._response_format(schema, name),
                )
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError,
                    openai.RateLimitError) as exc:
                raise BackendUnavailable(f"LLM endpoint unavailable: {exc}", backend="llm") from exc
            except openai.APIStatusError as exc:
                raise BackendUnavailable(f"LLM endpoint refused the request: {exc}", backend="llm") from exc
        if not response.choices or response.choices[0].message.content is None:
            raise LLMOutputError("LLM endpoint returned no content")
        return response.choices[0].message.content

    async def close(self) -> None:
        await self._client.close()
