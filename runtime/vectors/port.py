"""The vector store port.

Every read takes the tenant and a scope, and adapters AND them outside the caller's
metadata filter: a filter can narrow a read, never widen it past its tenant and scope.
A point carries the memory's dense embedding and, where the store has them, its BM25 sparse
vector, computed by the store from the memory's text in the same upsert (so recovery, which
re-applies journal entries through ``upsert``, restores both).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import msgspec

from runtime.filters import Expr
from runtime.model import MemoryRecord, Scope
from runtime.vectors.hybrid import SearchMode


class Hit(msgspec.Struct, frozen=True):
    record: MemoryRecord
    score: float


class VectorStore(Protocol):
    has_sparse: bool  # the points carry sparse vectors: sparse and hybrid searches need them
    # None: an upsert is durable when it returns. N: what was written since the last ``flush`` is
    # lost on a crash, so the caller flushes at least every N journal entries before it records
    # them as applied (runtime/recovery.py)
    flush_every: int | None

    async def flush(self) -> None:
        """Make everything written so far durable."""
        ...

    async def open(self, dims: int) -> None: ...

    async def close(self) -> None: ...

    async def upsert(self, records: list[MemoryRecord], vectors: list[list[float]]) -> None:
        """Point id = memory id, so re-applying a journal entry is idempotent."""
        ...

    async def delete(self, memory_ids: list[str]) -> None: ...

    async def search(
        self, vector: list[float] | None, *, tenant: str, scope: Scope | None, filters: Expr | None, limit: int,
        threshold: float | None = None, text: str | None = None, mode: SearchMode = "dense",
    ) -> list[Hit]: ...

    async def search_batch(
        self, vectors: list[list[float]] | None, *, tenant: str, scope: Scope | None, filters: Expr | None,
        limit: int, threshold: float | None = None, texts: list[str] | None = None, mode: SearchMode = "dense",
    ) -> list[list[Hit]]:
        """One hit list per query, in order: the similar memories of every fact of a turn in one
        engine call (Qdrant plans the batch as a whole). ``mode`` picks the ranking (see
        ``runtime.vectors.hybrid``): dense needs ``vectors``, sparse ``texts``, hybrid both."""
        ...

    async def add_sparse_slot(self) -> bool:
        """Give a store created before sparse vectors existed a place for them (True when one was
        added). Its points get their sparse vectors from ``write_sparse``."""
        ...

    async def write_sparse(self, records: list[MemoryRecord]) -> int:
        """Set the sparse vectors of stored memories from their text, leaving dense vectors and
        payloads as they are; memories not in the store are skipped. Returns how many were written."""
        ...

    async def get(self, tenant: str, memory_ids: list[str]) -> list[MemoryRecord]: ...

    async def list(
        self, *, tenant: str, scope: Scope | None, filters: Expr | None, limit: int, offset: int = 0,
    ) -> list[MemoryRecord]: ...

    async def count(self, *, tenant: str, scope: Scope | None, filters: Expr | None) -> int: ...


class SearchOne:
    """``search`` for one query, as a batch of one: adapters implement ``search_batch`` only."""

    async def search(self, vector: list[float] | None, *, tenant: str, scope: Scope | None, filters: Expr | None,
                     limit: int, threshold: float | None = None, text: str | None = None,
                     mode: SearchMode = "dense") -> list[Hit]:
        batch = self.search_batch  # type: ignore[attr-defined]
        [hits] = await batch(None if vector is None else [vector], tenant=tenant, scope=scope, filters=filters,
                             limit=limit, threshold=threshold, texts=None if text is None else [text], mode=mode)
        return hits


def to_payload(record: MemoryRecord) -> dict[str, Any]:
    """What a point carries: flat scope fields and owner (indexed), the text, the metadata nested."""
    payload = {
        "tenant": record.tenant,
        "owner": record.scope.owner,
        "memory": record.text,
        "hash": record.hash,
        "metadata": record.metadata,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
        "actor_id": record.actor_id,
        "role": record.role,
    }
    payload.update(record.scope.fields())
    return payload


def from_payload(memory_id: str, payload: dict[str, Any]) -> MemoryRecord:
    return MemoryRecord(
        id=memory_id,
        text=payload.get("memory", ""),
        scope=Scope(user_id=payload.get("user_id"), agent_id=payload.get("agent_id"), run_id=payload.get("run_id")),
        tenant=payload.get("tenant", ""),
        metadata=payload.get("metadata") or {},
        hash=payload.get("hash", ""),
        created_at=payload.get("created_at", ""),
        updated_at=payload.get("updated_at"),
        version=int(payload.get("version", 1)),
        actor_id=payload.get("actor_id"),
        role=payload.get("role"),
    )


def scope_conditions(tenant: str, scope: Scope | None) -> list[tuple[str, str]]:
    """(field, value) equalities every read is restricted to: the tenant, and with a scope its owner
    (what authorization and the journal are keyed on) and its ids. Without the owner, an agent-level
    read would also match a user's memories that carry the same agent id."""
    conditions = [("tenant", tenant)]
    if scope is not None:
        conditions.append(("owner", scope.owner))
        conditions.extend(sorted(scope.fields().items()))
    return conditions


METADATA_PREFIX = "metadata."
INDEXED_KEYWORDS = ("tenant", "owner", "user_id", "agent_id", "run_id")


def is_uuid(value: object) -> bool:
    """Memory ids are UUIDs; anything else cannot name a point (and is not an error to look up)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)
