"""Adds answered at once and run in the background: Mem0's async mode, with memstream's order.

Mem0's platform answers an add with an ``event_id`` and processes it later; clients poll
``/v1/event/{event_id}/`` or just read later. Here the adds of one owner run one after the
other in the order they were accepted (the engine's mailbox orders writes, but two HTTP
requests racing to it would not be), and a read of an owner waits until the adds this gateway
accepted for that owner before it have finished: a client that adds and then searches finds
what it added, as it would over the WebSocket. Both are per gateway process.

Bounded: at most ``capacity`` adds waiting or running (beyond it: ``Overloaded``, HTTP 429);
the statuses of the last ``keep`` adds are kept for polling. Shutting down refuses new adds and
lets the accepted ones finish within the grace period, as the WebSocket does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
import structlog

from runtime.clock import Clock, SystemClock, iso
from runtime.errors import BackendUnavailable, MemstreamError, Overloaded

log = structlog.get_logger("memstream.gateway.rest")


class AddStatus(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    owner: str
    status: str = "PENDING"
    results: list[dict[str, Any]] = []
    error: str | None = None
    created_at: str
    updated_at: str


class BackgroundAdds:
    def __init__(self, *, capacity: int, keep: int, clock: Clock | None = None):
        self.capacity = capacity
        self.keep = keep
        self._clock = clock or SystemClock()
        self._statuses: OrderedDict[tuple[str, str], AddStatus] = OrderedDict()
        self._tails: dict[tuple[str, str], anyio.Event] = {}
        self._tasks: anyio.abc.TaskGroup | None = None
        self._stop = anyio.Event()
        self._idle = anyio.Event()
        self.running = 0
        self.closed = False

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the background tasks until ``close``."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            task_status.started()
            await self._stop.wait()
            tasks.cancel_scope.cancel()

    def submit(self, tenant: str, owner: str, event_id: str, work: Callable[[], Awaitable[dict[str, Any]]],
               ) -> AddStatus:
        """Queue ``work`` behind the owner's earlier adds. An event id already pending or done is
        answered with its status (a retried POST starts nothing); a failed one is tried again."""
        if self.closed or self._tasks is None:
            raise BackendUnavailable("the server is shutting down; retry with the same request_id",
                                     backend="gateway")
        known = self._statuses.get((tenant, event_id))
        if known is not None and known.status != "FAILED":
            return known
        if self.running >= self.capacity:
            raise Overloaded(f"{self.capacity} adds are already waiting; retry later")
        now = iso(self._clock.now())
        status = AddStatus(id=event_id, tenant=tenant, owner=owner, created_at=now, updated_at=now)
        self._remember(status)
        lane = (tenant, owner)
        before, done = self._tails.get(lane), anyio.Event()
        self._tails[lane] = done
        self.running += 1
        self._idle = anyio.Event()
        self._tasks.start_soon(self._run, status, work, before, done)
        return status

    def _remember(self, status: AddStatus) -> None:
        key = (status.tenant, status.id)
        self._statuses.pop(key, None)
        self._statuses[key] = status
        while len(self._statuses) > self.keep:
            oldest_key, oldest = next(iter(self._statuses.items()))
            if oldest.status in ("PENDING", "RUNNING"):
                break  # never forget an add that has not finished (bounded by capacity anyway)
            del self._statuses[oldest_key]

    async def _run(self, status: AddStatus, work: Callable[[], Awaitable[dict[str, Any]]],
                   before: anyio.Event | None, done: anyio.Event) -> None:
        try:
            if before is not None:
                await before.wait()
            self._mark(status, "RUNNING")
            result = await work()
            status.results = list(result.get("results", []))
            self._mark(status, "SUCCEEDED")
        except MemstreamError as exc:
            status.error = f"{exc.code}: {exc}"
            self._mark(status, "FAILED")
        except Exception:
            log.exception("background_add_failed", event_id=status.id, owner=status.owner)
            status.error = "internal: internal error (logged on the server)"
            self._mark(status, "FAILED")
        finally:
            done.set()
            lane = (status.tenant, status.owner)
            if self._tails.get(lane) is done:
                del self._tails[lane]
            self.running -= 1
            if not self.running:
                self._idle.set()

    def _mark(self, status: AddStatus, state: str) -> None:
        status.status = state
        status.updated_at = iso(self._clock.now())

    async def settled(self, tenant: str, owner: str) -> None:
        """Return once every add accepted so far for the owner has finished (they run in order, so
        the last one finishing is enough)."""
        tail = self._tails.get((tenant, owner))
        if tail is not None:
            await tail.wait()

    def status(self, tenant: str, event_id: str) -> AddStatus | None:
        return self._statuses.get((tenant, event_id))

    async def close(self, grace_s: float) -> None:
        """Refuse new adds; let the accepted ones finish within ``grace_s``; then stop."""
        self.closed = True
        if self.running:
            with anyio.move_on_after(grace_s):
                await self._idle.wait()
        self._stop.set()
