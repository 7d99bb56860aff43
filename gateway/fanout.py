"""One upstream subscription per owner (and per tenant), shared by every local subscriber.

Following each subscriber separately would cost one Ray streaming call per subscriber on the
owner's shard: in the benchmark, 1,000 subscribers of one owner filled a shard's concurrent-call
slots and starved its other calls. So the gateway follows each owner once and fans the events
out through an ``EventHub`` — the engine's own fan-out, with its seam logic: every local
subscriber has a bounded queue (cut off with ``ResyncRequired`` when full), replays
``(after_seq, …]`` with plain ``read_events`` calls, then continues live, filling any gap from
the journal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import structlog

from runtime.errors import MemstreamError
from runtime.events import EventHub, ResyncRequired
from runtime.model import MemoryEvent

log = structlog.get_logger("memstream.gateway")


class _Upstream:
    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.scope = anyio.CancelScope()
        self.subscribers = 0
        self.last = 0
        self.failure: MemstreamError | None = None


class Fanout:
    def __init__(self, memory: Any, capacity: int, retry_s: float = 1.0):
        self.memory = memory
        self.hub = EventHub(capacity)
        self.retry_s = retry_s
        self._upstreams: dict[tuple[str, str | None], _Upstream] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hosts the upstream tasks for as long as the gateway runs."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    def head(self, tenant: str, owner: str) -> int | None:
        upstream = self._upstreams.get((tenant, owner))
        return upstream.last if upstream is not None and upstream.ready.is_set() else None

    @property
    def upstream_count(self) -> int:
        return len(self._upstreams)

    async def subscribe(self, tenant: str, owner: str, scope_ids: dict[str, Any],
                        after_seq: int) -> AsyncIterator[MemoryEvent]:
        key = (tenant, owner)
        upstream = await self._join(key, scope_ids)
        try:
            async def read(after: int) -> list[MemoryEvent]:
                return await self.memory.read_events(**scope_ids, after_seq=after, limit=500, tenant=tenant)

            async for event in self.hub.stream(tenant, owner, after_seq, read):
                yield event
        finally:
            self._leave(key, upstream)

    async def subscribe_tenant(self, tenant: str) -> AsyncIterator[MemoryEvent]:
        key = (tenant, None)
        upstream = await self._join(key, None)
        try:
            async for event in self.hub.stream_tenant(tenant):
                yield event
        finally:
            self._leave(key, upstream)

    async def _join(self, key: tuple[str, str | None], scope_ids: dict[str, Any] | None) -> _Upstream:
        """The upstream for ``key``, started if needed; returns once its start position is known,
        so a subscriber's replay always reaches at least where the upstream begins."""
        upstream = self._upstreams.get(key)
        if upstream is None:
            assert self._tg is not None, "Fanout.run is not running"
            upstream = self._upstreams[key] = _Upstream()
            self._tg.start_soon(self._follow, key, scope_ids, upstream)
        upstream.subscribers += 1
        try:
            await upstream.ready.wait()
        except BaseException:
            self._leave(key, upstream)
            raise
        if upstream.failure is not None:
            self._leave(key, upstream)
            raise upstream.failure
        return upstream

    def _leave(self, key: tuple[str, str | None], upstream: _Upstream) -> None:
        upstream.subscribers -= 1
        if upstream.subscribers <= 0:
            upstream.scope.cancel()
            if self._upstreams.get(key) is upstream:
                del self._upstreams[key]

    async def _follow(self, key: tuple[str, str | None], scope_ids: dict[str, Any] | None,
                      upstream: _Upstream) -> None:
        tenant, owner = key
        with upstream.scope:
            try:
                if scope_ids is not None:
                    upstream.last = await self.memory.head(**scope_ids, tenant=tenant)
            except MemstreamError as exc:
                upstream.failure = exc
                upstream.ready.set()
                self._upstreams.pop(key, None)
                return
            upstream.ready.set()
            while True:
                stream = (self.memory.subscribe_tenant(tenant=tenant) if scope_ids is None
                          else self.memory.subscribe(**scope_ids, after_seq=upstream.last, tenant=tenant))
                try:
                    async with aclosing(stream) as events:
                        async for event in events:
                            if owner is not None:  # a tenant stream mixes owners' seqs: no single head
                                upstream.last = max(upstream.last, event.seq)
                            self.hub.publish_events([event])
                except ResyncRequired:
                    log.warning("upstream_resync", tenant=tenant, owner=owner, last=upstream.last)
                except MemstreamError as exc:
                    log.warning("upstream_failed", tenant=tenant, owner=owner, error=str(exc))
                    await anyio.sleep(self.retry_s)
