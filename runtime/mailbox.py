"""Per-owner mailboxes: the one place where a user's writes are put in order.

Each active owner gets a FIFO lane (anyio's Lock hands over in arrival order) with a
bounded number of waiting requests; a full lane refuses with ``Overloaded`` instead of
growing, and a lane with nothing waiting is dropped, so idle users cost nothing. The
in-process engine and the Ray shard actors host this same class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from runtime.errors import Overloaded

T = TypeVar("T")


class _Lane:
    __slots__ = ("lock", "pending")

    def __init__(self) -> None:
        self.lock = anyio.Lock(fast_acquire=True)  # an idle lane does not yield to the event loop
        self.pending = 0


class OwnerMailboxes:
    def __init__(self, capacity: int = 64):
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.capacity = capacity
        self._lanes: dict[str, _Lane] = {}

    async def run(self, owner: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` after every earlier request of ``owner`` has finished."""
        lane = self._lanes.get(owner)
        if lane is None:
            lane = self._lanes[owner] = _Lane()
        if lane.pending >= self.capacity:
            raise Overloaded(f"too many requests queued for {owner} ({self.capacity}); retry later")
        lane.pending += 1
        try:
            async with lane.lock:
                return await work()
        finally:
            lane.pending -= 1
            if lane.pending == 0 and self._lanes.get(owner) is lane:
                del self._lanes[owner]

    def depth(self, owner: str) -> int:
        lane = self._lanes.get(owner)
        return lane.pending if lane else 0

    @property
    def active(self) -> int:
        return len(self._lanes)
