"""The event side of the engine: an owner's head seq, its changes replayed from the journal
(one page, or everything after a seq and then live) and the tenant-wide live stream.

Live events come from the hub (``runtime.events``), which every commit publishes to; the replay
half reads the journal, so a subscriber sees every change once, in order, across the seam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from runtime.context import EngineContext
from runtime.model import MemoryEvent, event_from_entry, make_scope
from runtime.results import owner_scope


class Replay:
    def __init__(self, ctx: EngineContext):
        self.ctx = ctx

    async def head(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                   tenant: str | None = None) -> int:
        """The owner's last committed seq."""
        scope = make_scope(user_id, agent_id, run_id)
        await self.ctx.ready()
        return await self.ctx.journal.head(self.ctx.tenant(tenant), scope.owner)

    async def owners(self, *, tenant: str | None = None, counts: bool = False) -> list[dict[str, Any]]:
        """Every owner of the tenant with its head seq and, with ``counts``, how many memories it
        holds now (``memories``): what webhook deliveries scan, and the REST API's entity list."""
        ctx = self.ctx
        tenant = ctx.tenant(tenant)
        await ctx.ready()
        out: list[dict[str, Any]] = []
        for owner, head in await ctx.journal.heads(tenant):
            row: dict[str, Any] = {"owner": owner, "head": head}
            if counts:
                row["memories"] = await ctx.vectors.count(tenant=tenant, scope=owner_scope(owner), filters=None)
            out.append(row)
        return out

    async def subscribe(self, *, user_id: str | None = None, agent_id: str | None = None,
                        run_id: str | None = None, after_seq: int = 0,
                        tenant: str | None = None) -> AsyncIterator[MemoryEvent]:
        """Every change of the owner after ``after_seq``, in order, then live. Raises
        ``ResyncRequired`` if the consumer falls too far behind."""
        scope = make_scope(user_id, agent_id, run_id)
        tenant = self.ctx.tenant(tenant)
        await self.ctx.ready()

        async def read(after: int) -> list[MemoryEvent]:
            return [event_from_entry(e) for e in await self.ctx.journal.read(tenant, scope.owner, after_seq=after,
                                                                               limit=500)]

        async for event in self.ctx.hub.stream(tenant, scope.owner, after_seq, read):
            yield event

    async def read_events(self, *, user_id: str | None = None, agent_id: str | None = None,
                          run_id: str | None = None, after_seq: int = 0, limit: int = 500,
                          tenant: str | None = None) -> list[MemoryEvent]:
        """One page of the owner's events after ``after_seq`` (the replay half of ``subscribe``,
        as a plain call: what a gateway fanning out one live stream uses to catch subscribers up)."""
        scope = make_scope(user_id, agent_id, run_id)
        limit, _ = self.ctx.page(limit, 0)
        await self.ctx.ready()
        return [event_from_entry(e) for e in await self.ctx.journal.read(self.ctx.tenant(tenant), scope.owner,
                                                                          after_seq=after_seq, limit=limit)]

    async def subscribe_tenant(self, *, tenant: str | None = None) -> AsyncIterator[MemoryEvent]:
        """Every owner's changes in the tenant, live from now (admin view; no replay)."""
        await self.ctx.ready()
        async for event in self.ctx.hub.stream_tenant(self.ctx.tenant(tenant)):
            yield event
