"""Call accounting around any LLM backend: what the runtime reports about LLM concurrency
(continuous-batching servers and engines are only as busy as the calls kept in flight)."""

from __future__ import annotations

from typing import Any

from runtime.llms.port import LLM


class CountedLLM:
    def __init__(self, inner: LLM):
        self.inner = inner
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self.inner.complete_json(messages, schema, name=name)
        finally:
            self.in_flight -= 1

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"calls": self.calls, "peak_in_flight": self.peak_in_flight}
        if hasattr(self.inner, "prefix_cache_stats"):
            stats["prefix_cache"] = self.inner.prefix_cache_stats()
        return stats

    async def close(self) -> None:
        await self.inner.close()
