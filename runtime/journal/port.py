"""The journal port: what the engine needs from a history log, whatever stores it."""

from __future__ import annotations

from typing import Protocol

import msgspec

from runtime.model import EntryDraft, JournalEntry


class Appended(msgspec.Struct, frozen=True):
    """Outcome of an append: the committed entries, or - for a request id seen before - the
    result that request produced the first time (and nothing appended)."""

    entries: list[JournalEntry]
    replayed_result: bytes | None = None


class Journal(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(
        self, tenant: str, owner: str, drafts: list[EntryDraft], *, request_id: str | None = None,
        result: bytes | None = None,
    ) -> Appended:
        """Give the drafts the next gapless seqs of the owner and commit them, with the request's
        result, in one transaction."""
        ...

    async def find_request(self, tenant: str, owner: str, request_id: str) -> bytes | None: ...

    async def read(
        self, tenant: str, owner: str, *, after_seq: int = 0, until_seq: int | None = None,
        until_ts: float | None = None, limit: int | None = None,
    ) -> list[JournalEntry]: ...

    async def head(self, tenant: str, owner: str) -> int: ...

    async def history(self, tenant: str, memory_id: str) -> list[JournalEntry]: ...

    async def owners(self, tenant: str | None = None) -> list[tuple[str, str]]: ...

    async def heads(self, tenant: str) -> list[tuple[str, int]]:
        """(owner, head seq) of every owner of the tenant."""
        ...

    async def watermark(self, projection: str, tenant: str, owner: str) -> int: ...

    async def set_watermark(self, projection: str, tenant: str, owner: str, seq: int) -> None: ...

    async def lagging(self, projection: str) -> list[tuple[str, str, int, int]]:
        """(tenant, owner, watermark, head) for every owner whose projection is behind."""
        ...
