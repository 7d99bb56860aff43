"""Micro-batching: many callers' items → one backend call.

An idle batcher (no call out) sends what it has at once: a lone request never waits for
company. While calls are out, what arrives meanwhile is gathered into the next call - up to
``max_batch`` items, and for at most ``max_wait_s`` when a free call slot would let a partial
batch go sooner (``max_in_flight`` > 1). So under load the work batches instead of queueing,
and at low load nothing waits on a timer.

Used twice on the embedding path: by the embedder actor, so that texts from every shard share
one model call, and in front of it by each shard, so that under load a shard makes one Ray call
for many requests. Each caller gets exactly its own results back, and a failed batch fails
every caller in it - nobody waits forever. The queue is bounded: a full batcher refuses with
``Overloaded``. With a ``name``, each caller's trace (``runtime.hops``) gets the time its items
waited (``<name>_wait_ms``) and the time of the call that carried them (``<name>_call_ms``).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio
import msgspec

from runtime import hops
from runtime.errors import Overloaded

In = TypeVar("In")
Out = TypeVar("Out")


class BatchStats(msgspec.Struct):
    batches: int = 0
    items: int = 0
    max_batch: int = 0
    full_flushes: int = 0  # max_batch items were waiting
    idle_flushes: int = 0  # sent at once: no other call was out
    timed_flushes: int = 0  # a partial batch gathered while other calls were out

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0


def gather_more(pending: int, in_flight: int, max_batch: int, max_wait_s: float) -> bool:
    """Whether to hold a partial batch for more items: only while other calls are out (what
    arrives would otherwise wait behind them anyway); an idle batcher sends at once."""
    return max_wait_s > 0 and in_flight > 0 and pending < max_batch


class _Request(Generic[In, Out]):
    __slots__ = ("items", "done", "result", "error", "queued", "sent", "call_ms")

    def __init__(self, items: Sequence[In]):
        self.items = list(items)
        self.done = anyio.Event()
        self.result: list[Out] = []
        self.error: BaseException | None = None
        self.queued = time.perf_counter()
        self.sent = self.queued
        self.call_ms = 0.0


class MicroBatcher(Generic[In, Out]):
    def __init__(self, call: Callable[[list[In]], Awaitable[list[Out]]], *, max_batch: int = 64,
                 max_wait_s: float = 0.005, max_pending: int = 10_000, max_in_flight: int = 1, name: str = ""):
        self._call = call
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.max_in_flight = max_in_flight
        self.name = name
        self._queue: deque[_Request[In, Out]] = deque()
        self._pending_items = 0
        self._in_flight = 0
        self._wakeup = anyio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    async def submit(self, items: Sequence[In]) -> list[Out]:
        """Queue ``items``; return their results once the batch that holds them has run."""
        if not items:
            return []
        if self._pending_items + len(items) > self.max_pending:
            raise Overloaded(f"batcher queue is full ({self.max_pending} items waiting)")
        request: _Request[In, Out] = _Request(items)
        self._queue.append(request)
        self._pending_items += len(items)
        self._wakeup.set()
        await request.done.wait()
        if self.name and hops.active():
            hops.add(f"{self.name}_wait_ms", (request.sent - request.queued) * 1000)
            hops.add(f"{self.name}_call_ms", request.call_ms)
        if request.error is not None:
            raise request.error
        return request.result

    def _take(self) -> list[_Request[In, Out]]:
        """Whole requests up to max_batch items (a request larger than max_batch goes alone)."""
        taken, count = [], 0
        while self._queue and (not taken or count + len(self._queue[0].items) <= self.max_batch):
            request = self._queue.popleft()
            taken.append(request)
            count += len(request.items)
        self._pending_items -= count
        return taken

    def _gather_more(self) -> bool:
        return gather_more(self._pending_items, self._in_flight, self.max_batch, self.max_wait_s)

    async def run(self) -> None:
        """The flush loop; run it in a task group for the batcher's lifetime. Up to ``max_in_flight``
        batches are out at once; what arrives while they are goes in the next one."""
        slots = anyio.Semaphore(self.max_in_flight, fast_acquire=True)
        async with anyio.create_task_group() as flushes:
            while True:
                while not self._queue:  # also woken by calls coming back
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                idle = self._in_flight == 0
                if self._gather_more():
                    with anyio.move_on_after(self.max_wait_s):
                        while self._gather_more():  # woken by new items and by calls coming back
                            self._wakeup = anyio.Event()
                            await self._wakeup.wait()
                await slots.acquire()
                kind = "full" if self._pending_items >= self.max_batch else "idle" if idle else "timed"
                self._in_flight += 1
                flushes.start_soon(self._flush_then_release, self._take(), kind, slots)

    def run_in_background(self) -> None:
        """Start ``run`` as a task of the running asyncio loop, if it is not running: for Ray actors,
        whose calls have no task group that outlives them."""
        if self._runner is None or self._runner.done():
            # a fresh context: the runner must not keep the first caller's context (and its trace)
            self._runner = asyncio.get_running_loop().create_task(self.run(), context=contextvars.Context())

    async def _flush_then_release(self, batch: list[_Request[In, Out]], kind: str, slots: anyio.Semaphore) -> None:
        try:
            await self._flush(batch, kind)
        finally:
            self._in_flight -= 1
            slots.release()
            self._wakeup.set()  # a loop gathering more items re-checks: the batcher may be idle now

    async def _flush(self, batch: list[_Request[In, Out]], kind: str) -> None:
        items = [item for request in batch for item in request.items]
        self.stats.batches += 1
        self.stats.items += len(items)
        self.stats.max_batch = max(self.stats.max_batch, len(items))
        setattr(self.stats, f"{kind}_flushes", getattr(self.stats, f"{kind}_flushes") + 1)
        sent = time.perf_counter()
        error: Exception | None = None
        try:
            results = await self._call(items)
            if len(results) != len(items):
                raise RuntimeError(f"batch call returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # every waiter of the batch gets the failure
            error = exc
        call_ms = (time.perf_counter() - sent) * 1000
        for request in batch:
            request.sent, request.call_ms = sent, call_ms
        if error is not None:
            for request in batch:
                request.error = error
                request.done.set()
            return
        offset = 0
        for request in batch:
            request.result = results[offset:offset + len(request.items)]
            offset += len(request.items)
            request.done.set()

