"""The LLM port. Adapters return raw text; parsing and validation live in the pure core."""

from __future__ import annotations

from typing import Any, Protocol


class LLM(Protocol):
    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        """Generate one answer constrained to ``schema`` (as far as the backend can enforce it)."""
        ...

    async def close(self) -> None: ...
