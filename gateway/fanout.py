"""One upstream subscription per owner (and per tenant), shared by every local subscriber.

Following each subscriber separately would cost one Ray streaming call per subscriber on the
owner's shard: in the benchmark, 1,000 subscribers of one owner filled a shard's concurrent-call
slots and starved its other calls. So the gateway follows each owner once and hands each event
to the owner's *room*: the event is encoded once per wire format and written straight to every
live member's connection (``gateway.members``), with no task switch per subscriber.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import structlog

from gateway.event_frames import SharedEvent
from gateway.members import Member
from runtime.errors import MemstreamError
from runtime.events import ResyncRequired
from runtime.model import MemoryEvent

log = structlog.get_logger("memstream.gateway")


def _epoch(iso: str) -> float:
    try:
        return dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return time.time()


class _Upstream:
    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.scope = anyio.CancelScope()
        self.subscribers = 0
        self.last = 0
        self.failure: MemstreamError | None = None


class Fanout:
    def __init__(self, memory: Any, capacity: int, retry_s: float = 1.0,
                 on_published: Callable[[int, float, float], None] | None = None):
        self.memory = memory
        self.capacity = capacity  # events a catching-up member may hold before it is cut off
        self.retry_s = retry_s
        # (frames written, commit → arrival s, writing s) per event, for metrics
        self.on_published = on_published or (lambda written, arrival_s, write_s: None)
        self._upstreams: dict[tuple[str, str | None], _Upstream] = {}
        self._rooms: dict[tuple[str, str | None], set[Member]] = {}
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

    def pending(self) -> int:
        """Events held by members that are catching up (a gauge for metrics)."""
        return sum(len(m.pending) for room in self._rooms.values() for m in room)

    def subscriber_count(self) -> int:
        return sum(len(room) for room in self._rooms.values())

    @asynccontextmanager
    async def membership(self, tenant: str, owner: str | None, scope_ids: dict[str, Any] | None,
                         member: Member) -> AsyncIterator[None]:
        """``member`` receives the events of ``owner`` (every owner of ``tenant`` when None) for as
        long as the block runs. Joins before the block starts, so a catch-up that begins inside it
        reads the journal only after the member is registered: nothing falls in between."""
        key = (tenant, owner)
        upstream = await self._join(key, scope_ids)
        room = self._rooms.setdefault(key, set())
        room.add(member)
        try:
            yield
        finally:
            room.discard(member)
            if not room and self._rooms.get(key) is room:
                del self._rooms[key]
            self._leave(key, upstream)

    async def read(self, tenant: str, scope_ids: dict[str, Any], after: int) -> list[MemoryEvent]:
        return await self.memory.read_events(**scope_ids, after_seq=after, limit=500, tenant=tenant)

    def _publish(self, key: tuple[str, str | None], event: MemoryEvent) -> None:
        """To the room of the upstream that brought it. Never waits: a member that cannot take
        the event is cut off, the others go on."""
        arrived = time.time()
        shared = SharedEvent(event)
        written = 0
        for member in tuple(self._rooms.get(key, ())):
            written += member.offer(shared)
        self.on_published(written, arrived - _epoch(event.created_at), time.time() - arrived)

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
                            self._publish(key, event)
                except ResyncRequired:
                    log.warning("upstream_resync", tenant=tenant, owner=owner, last=upstream.last)
                except MemstreamError as exc:
                    log.warning("upstream_failed", tenant=tenant, owner=owner, error=str(exc))
                    await anyio.sleep(self.retry_s)
