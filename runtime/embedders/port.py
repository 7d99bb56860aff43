"""The embedder port."""

from __future__ import annotations

from typing import Protocol


class Embedder(Protocol):
    dims: int

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order; a failure fails the whole batch."""
        ...

    async def close(self) -> None: ...
