"""Changes a caller makes directly, without the LLM: update or delete one memory by id, delete
every memory (and relation) of a scope, reset a tenant. Each is journaled like an add's changes
and committed in the owner's mailbox, so history survives a delete and subscribers see it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime import reconcile
from runtime import relations as graph_rules
from runtime.clock import iso
from runtime.context import EngineContext
from runtime.errors import InvalidRequest, NotFound
from runtime.graphs import RelationEdge
from runtime.messages import check_metadata
from runtime.model import EntryDraft, JournalEntry, MemoryRecord, Scope, make_scope
from runtime.read import find_record
from runtime.results import change_dict, owner_scope
from runtime.timings import Stopwatch
from runtime.write import Writer


class Changes:
    def __init__(self, ctx: EngineContext, writer: Writer):
        self.ctx = ctx
        self.writer = writer

    async def _change_one(
        self, memory_id: str, tenant: str | None, make: Callable[[MemoryRecord, str], EntryDraft],
        request_id: str | None,
    ) -> JournalEntry | None:
        ctx = self.ctx
        tenant = ctx.tenant(tenant)
        await ctx.ready()
        try:
            record = await find_record(ctx, memory_id, tenant)
        except NotFound:
            if request_id is not None:  # a retried request that did commit: answer as the first time
                for entry in await ctx.journal.history(tenant, memory_id):
                    if entry.cause == request_id:
                        return entry
            raise

        async def work() -> JournalEntry | None:
            await self.writer.projections.catch_up(tenant, record.scope.owner)
            current = await find_record(ctx, memory_id, tenant)  # re-read inside the mailbox
            draft = make(current, iso(ctx.clock.now()))
            _, entries = await self.writer.commit(tenant, current.scope.owner, [draft], {}, request_id,
                                                  {"results": [change_dict(draft)]}, Stopwatch())
            return entries[0] if entries else None

        return await ctx.serialized(tenant, record.scope.owner, work)

    async def update(self, memory_id: str, data: str, *, metadata: dict[str, Any] | None = None,
                     tenant: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        if not isinstance(data, str) or not data.strip():
            raise InvalidRequest("data must be a non-empty string")
        metadata = check_metadata(metadata) if metadata is not None else None
        entry = await self._change_one(
            memory_id, tenant,
            lambda current, now: reconcile.update_entry(current, data.strip(), metadata, now, request_id),
            request_id,
        )
        return {"message": "Memory updated successfully!", "id": memory_id, "memory": data.strip(),
                "version": entry.version if entry else None}

    async def delete(self, memory_id: str, *, tenant: str | None = None,
                     request_id: str | None = None) -> dict[str, Any]:
        await self._change_one(memory_id, tenant,
                               lambda current, now: reconcile.delete_entry(current, now, request_id), request_id)
        return {"message": "Memory deleted successfully!", "id": memory_id}

    async def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None, tenant: str | None = None) -> dict[str, Any]:
        ctx = self.ctx
        scope = make_scope(user_id, agent_id, run_id)
        tenant = ctx.tenant(tenant)
        await ctx.ready()

        async def work() -> tuple[int, int]:
            await self.writer.projections.catch_up(tenant, scope.owner)
            records = await self._all_records(tenant, scope)
            now = iso(ctx.clock.now())
            drafts = [reconcile.delete_entry(r, now, "delete_all") for r in records]
            edges = await self._all_relations(tenant, scope) if ctx.graph_enabled else []
            drafts += [graph_rules.delete_entry(edge, now, "delete_all") for edge in edges]
            await self.writer.commit(tenant, scope.owner, drafts, {}, None, {}, Stopwatch())
            return len(records), len(edges)

        deleted, relations = await ctx.serialized(tenant, scope.owner, work)
        result: dict[str, Any] = {"message": "Memories deleted successfully!", "deleted": deleted}
        if ctx.graph_enabled:
            result["deleted_relations"] = relations
        return result

    async def reset(self, *, tenant: str | None = None) -> dict[str, Any]:
        """Delete every memory of the tenant - journaled like any other delete, so history survives."""
        tenant = self.ctx.tenant(tenant)
        await self.ctx.ready()
        deleted = 0
        for _, owner in await self.ctx.journal.owners(tenant):
            result = await self.delete_all(tenant=tenant, **owner_scope(owner).fields())
            deleted += result["deleted"]
        return {"message": "Memory store reset", "deleted": deleted}

    async def _all_relations(self, tenant: str, scope: Scope) -> list[RelationEdge]:
        """Every relation of the scope, invalidated ones too, paged (delete_all)."""
        edges: list[RelationEdge] = []
        page = self.ctx.config.memory.max_page_size
        while True:
            batch = await self.ctx.graph.relations(tenant, scope.owner, scope=scope, include_invalid=True,
                                                   limit=page, offset=len(edges))
            edges.extend(batch)
            if len(batch) < page or len(edges) >= self.ctx.config.graph.scan_limit:
                return edges

    async def _all_records(self, tenant: str, scope: Scope) -> list[MemoryRecord]:
        records: list[MemoryRecord] = []
        page = self.ctx.config.memory.max_page_size
        while True:
            batch = await self.ctx.vectors.list(tenant=tenant, scope=scope, filters=None, limit=page,
                                                offset=len(records))
            records.extend(batch)
            if len(batch) < page:
                return records
