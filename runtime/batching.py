"""Micro-batching: many callers' items → one backend call, flushed on size or on wait time.

Used twice on the embedding path: by the embedder actor, so that texts from every shard share
one model call, and in front of it by each shard (wait 0, one call in flight): texts that
arrive while the shard's previous call is out go together in the next, so under load a shard
makes one Ray call for many turns, and at low load no call waits. Each caller gets exactly
its own results back, and a failed batch fails every caller in it - nobody waits forever.
The queue is bounded: a full batcher refuses with ``Overloaded``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio
import msgspec

from runtime.errors import Overloaded

In = TypeVar("In")
Out = TypeVar("Out")


class BatchStats(msgspec.Struct):
    batches: int = 0
    items: int = 0
    max_batch: int = 0
    full_flushes: int = 0
    timed_flushes: int = 0

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0


class _Request(Generic[In, Out]):
    __slots__ = ("items", "done", "result", "error")

    def __init__(self, items: Sequence[In]):
        self.items = list(items)
        self.done = anyio.Event()
        self.result: list[Out] = []
        self.error: BaseException | None = None


class MicroBatcher(Generic[In, Out]):
    def __init__(self, call: Callable[[list[In]], Awaitable[list[Out]]], *, max_batch: int = 64,
                 max_wait_s: float = 0.005, max_pending: int = 10_000, max_in_flight: int = 1):
        self._call = call
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.max_in_flight = max_in_flight
        self._queue: deque[_Request[In, Out]] = deque()
        self._pending_items = 0
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

    async def run(self) -> None:
        """The flush loop; run it in a task group for the batcher's lifetime. Up to ``max_in_flight``
        batches are out at once; what arrives while they are goes in the next one."""
        slots = anyio.Semaphore(self.max_in_flight, fast_acquire=True)
        async with anyio.create_task_group() as flushes:
            while True:
                if not self._queue:
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                if self._pending_items < self.max_batch and self.max_wait_s > 0:
                    with anyio.move_on_after(self.max_wait_s):
                        while self._pending_items < self.max_batch:
                            self._wakeup = anyio.Event()
                            await self._wakeup.wait()
                await slots.acquire()
                full = self._pending_items >= self.max_batch
                flushes.start_soon(self._flush_then_release, self._take(), full, slots)

    def run_in_background(self) -> None:
        """Start ``run`` as a task of the running asyncio loop, if it is not running: for Ray actors,
        whose calls have no task group that outlives them."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self.run())

    async def _flush_then_release(self, batch: list[_Request[In, Out]], full: bool, slots: anyio.Semaphore) -> None:
        try:
            await self._flush(batch, full)
        finally:
            slots.release()

    async def _flush(self, batch: list[_Request[In, Out]], full: bool) -> None:
        items = [item for request in batch for item in request.items]
        self.stats.batches += 1
        self.stats.items += len(items)
        self.stats.max_batch = max(self.stats.max_batch, len(items))
        if full:
            self.stats.full_flushes += 1
        else:
            self.stats.timed_flushes += 1
        try:
            results = await self._call(items)
            if len(results) != len(items):
                raise RuntimeError(f"batch call returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # every waiter of the batch gets the failure
            for request in batch:
                request.error = exc
                request.done.set()
            return
        offset = 0
        for request in batch:
            request.result = results[offset:offset + len(request.items)]
            offset += len(request.items)
            request.done.set()

