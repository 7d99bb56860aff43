"""The read paths that answer from the stores and the journal: one memory, a scope's memories
(paged, filtered, or ``as_of`` a seq or a time by replaying the journal) and the change history.

Reads do not go through the owner's mailbox: the stores only ever hold what the journal has
committed, so a read never sees a memory before its journal entry. Search is ``runtime.search``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runtime import relations as graph_rules
from runtime.context import EngineContext
from runtime.errors import InvalidRequest, NotFound
from runtime.filters import matches, parse_filters
from runtime.graphs import RelationEdge
from runtime.model import JournalEntry, MemoryRecord, Scope, make_scope, replay, replay_relations
from runtime.results import record_dict


async def find_record(ctx: EngineContext, memory_id: str, tenant: str) -> MemoryRecord:
    """The memory as stored now, or ``NotFound``."""
    if not isinstance(memory_id, str) or not memory_id:
        raise InvalidRequest("memory_id must be a non-empty string")
    found = await ctx.vectors.get(tenant, [memory_id])
    if not found:
        raise NotFound(f"no memory with id {memory_id!r}")
    return found[0]


def _in_scope(items: Any, scope: Scope) -> list[Any]:
    """Records or journal entries whose scope has every id the wanted scope names."""
    wanted = scope.fields()
    return [item for item in items if all(item.scope.fields().get(k) == v for k, v in wanted.items())]


class Reader:
    def __init__(self, ctx: EngineContext):
        self.ctx = ctx

    async def get(self, memory_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        await self.ctx.ready()
        return record_dict(await find_record(self.ctx, memory_id, self.ctx.tenant(tenant)))

    async def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                      filters: dict[str, Any] | None = None, limit: int = 100, offset: int = 0,
                      as_of: int | float | str | dt.datetime | None = None,
                      include_invalidated: bool = False, tenant: str | None = None) -> dict[str, Any]:
        """Memories in scope, paged. ``as_of`` (a seq, a datetime or an ISO time) replays the journal
        to answer with what was known then. With graph memory on, ``relations`` lists the scope's
        relations (valid ones; invalidated ones too with ``include_invalidated``), paged alike."""
        ctx = self.ctx
        scope = make_scope(user_id, agent_id, run_id)
        expr = parse_filters(filters)
        limit, offset = ctx.page(limit, offset)
        tenant = ctx.tenant(tenant)
        await ctx.ready()
        edges: list[RelationEdge] = []
        if as_of is None:
            records = await ctx.vectors.list(tenant=tenant, scope=scope, filters=expr, limit=limit, offset=offset)
            if ctx.graph_enabled:
                edges = await ctx.graph.relations(tenant, scope.owner, scope=scope,
                                                  include_invalid=include_invalidated, limit=limit, offset=offset)
        else:
            entries = await self._journal_as_of(tenant, scope, as_of)
            records = _in_scope(replay(entries).values(), scope)
            records = [r for r in records if matches(expr, r.metadata)][offset:offset + limit]
            if ctx.graph_enabled:
                edges = [graph_rules.edge_of(e) for e in _in_scope(replay_relations(entries).values(), scope)]
                edges = [e for e in edges if include_invalidated or e.invalid_at is None][offset:offset + limit]
        result: dict[str, Any] = {"results": [record_dict(r) for r in records]}
        if ctx.graph_enabled:
            result["relations"] = [graph_rules.relation_dict(e.id, e.fact()) for e in edges]
        return result

    async def count(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                    filters: dict[str, Any] | None = None, as_of: int | float | str | dt.datetime | None = None,
                    tenant: str | None = None) -> int:
        """How many memories ``get_all`` pages through with the same scope, filters and ``as_of``."""
        ctx = self.ctx
        scope = make_scope(user_id, agent_id, run_id)
        expr = parse_filters(filters)
        tenant = ctx.tenant(tenant)
        await ctx.ready()
        if as_of is None:
            return await ctx.vectors.count(tenant=tenant, scope=scope, filters=expr)
        entries = await self._journal_as_of(tenant, scope, as_of)
        return sum(1 for r in _in_scope(replay(entries).values(), scope) if matches(expr, r.metadata))

    async def _journal_as_of(self, tenant: str, scope: Scope,
                             as_of: int | float | str | dt.datetime) -> list[JournalEntry]:
        until_seq = until_ts = None
        if isinstance(as_of, bool):
            raise InvalidRequest("as_of must be a seq (int), a datetime or an ISO-8601 time")
        if isinstance(as_of, int):
            until_seq = as_of
        elif isinstance(as_of, float):
            until_ts = as_of
        else:
            try:
                moment = as_of if isinstance(as_of, dt.datetime) else dt.datetime.fromisoformat(str(as_of))
            except ValueError:
                raise InvalidRequest(f"as_of {as_of!r} is not an ISO-8601 time") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            until_ts = moment.timestamp()
        return await self.ctx.journal.read(tenant, scope.owner, until_seq=until_seq, until_ts=until_ts)

    async def history(self, memory_id: str | None = None, *, user_id: str | None = None,
                      agent_id: str | None = None, run_id: str | None = None, since_seq: int = 0,
                      limit: int = 1000, tenant: str | None = None) -> list[dict[str, Any]]:
        """The change log of one memory, or (with a scope) of one owner after ``since_seq``."""
        tenant = self.ctx.tenant(tenant)
        await self.ctx.ready()
        if memory_id is not None:
            if not isinstance(memory_id, str) or not memory_id:
                raise InvalidRequest("memory_id must be a non-empty string")
            entries = await self.ctx.journal.history(tenant, memory_id)
            if not entries:
                raise NotFound(f"no history for memory id {memory_id!r}")
        else:
            scope = make_scope(user_id, agent_id, run_id)
            limit, _ = self.ctx.page(limit, 0)
            entries = await self.ctx.journal.read(tenant, scope.owner, after_seq=since_seq, limit=limit)
        return [e.history_row() for e in entries]
