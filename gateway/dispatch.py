"""One authorized request → one call of the memory API.

The backend is anything with ``AsyncMemory``'s methods: the engine in this process, or
``ClusterMemory`` reaching the shard actors on Ray. The tenant is always the token's.
Calls by memory id name no owner, so the record is read first and its owner checked
against the token before anything is returned or changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec

from gateway import protocol as p
from gateway.auth import Grant
from runtime.errors import InvalidRequest, NotFound
from runtime.model import MemoryEvent, make_scope


class MemoryBackend(Protocol):
    async def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]: ...
    async def search(self, query: str, **kwargs: Any) -> dict[str, Any]: ...
    async def get(self, memory_id: str, **kwargs: Any) -> dict[str, Any]: ...
    async def get_all(self, **kwargs: Any) -> dict[str, Any]: ...
    async def update(self, memory_id: str, data: str, **kwargs: Any) -> dict[str, Any]: ...
    async def delete(self, memory_id: str, **kwargs: Any) -> dict[str, Any]: ...
    async def delete_all(self, **kwargs: Any) -> dict[str, Any]: ...
    async def history(self, memory_id: str | None = None, **kwargs: Any) -> list[dict[str, Any]]: ...
    async def head(self, **kwargs: Any) -> int: ...
    async def count(self, **kwargs: Any) -> int: ...
    async def owners(self, **kwargs: Any) -> list[dict[str, Any]]: ...
    async def reset(self, **kwargs: Any) -> dict[str, Any]: ...
    def subscribe(self, **kwargs: Any) -> AsyncIterator[MemoryEvent]: ...
    def subscribe_tenant(self, **kwargs: Any) -> AsyncIterator[MemoryEvent]: ...
    async def read_events(self, **kwargs: Any) -> list[MemoryEvent]: ...


def owner_of(frame: p._Scoped) -> str:
    return make_scope(**frame.scope_ids()).owner


def record_owner(row: dict[str, Any]) -> str:
    return make_scope(row.get("user_id"), row.get("agent_id"), row.get("run_id")).owner


class Dispatcher:
    def __init__(self, memory: MemoryBackend):
        self.memory = memory

    async def run(self, grant: Grant, frame: Any) -> Any:
        m, tenant = self.memory, grant.tenant
        match frame:
            case p.Add():
                grant.require("write", owner_of(frame))
                messages = frame.messages if isinstance(frame.messages, str) else msgspec.to_builtins(frame.messages)
                return await m.add(messages, **frame.scope_ids(), metadata=frame.metadata, infer=frame.infer,
                                   request_id=frame.request_id, tenant=tenant)
            case p.Search():
                grant.require("read", owner_of(frame))
                return await m.search(frame.query, **frame.scope_ids(), filters=frame.filters, limit=frame.limit,
                                      threshold=frame.threshold, fallback=frame.fallback, mode=frame.mode,
                                      tenant=tenant)
            case p.GetAll():
                grant.require("read", owner_of(frame))
                return await m.get_all(**frame.scope_ids(), filters=frame.filters, limit=frame.limit,
                                       offset=frame.offset, as_of=frame.as_of, tenant=tenant)
            case p.Head():
                grant.require("read", owner_of(frame))
                return {"head": await m.head(**frame.scope_ids(), tenant=tenant)}
            case p.DeleteAll():
                grant.require("write", owner_of(frame))
                return await m.delete_all(**frame.scope_ids(), tenant=tenant)
            case p.Get():
                grant.require("read")
                record = await m.get(frame.memory_id, tenant=tenant)
                grant.require("read", record_owner(record))
                return record
            case p.Update():
                grant.require("write")
                grant.require("write", record_owner(await m.get(frame.memory_id, tenant=tenant)))
                return await m.update(frame.memory_id, frame.data, metadata=frame.metadata, tenant=tenant,
                                      request_id=frame.request_id)
            case p.Delete():
                grant.require("write")
                grant.require("write", record_owner(await m.get(frame.memory_id, tenant=tenant)))
                return await m.delete(frame.memory_id, tenant=tenant, request_id=frame.request_id)
            case p.Reset():
                grant.require("admin")
                return await m.reset(tenant=tenant)
            case p.History() if frame.memory_id is not None:
                grant.require("read")
                rows = await m.history(frame.memory_id, tenant=tenant)
                if not rows:
                    raise NotFound(f"no history for memory id {frame.memory_id!r}")
                grant.require("read", record_owner(rows[0]))
                return rows
            case p.History():
                grant.require("read", owner_of(frame))
                return await m.history(**frame.scope_ids(), since_seq=frame.since_seq, limit=frame.limit,
                                       tenant=tenant)
        raise InvalidRequest(f"{type(frame).__name__} is not a memory operation")
