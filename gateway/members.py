"""A subscription's place in its owner's fan-out: live events written straight to its socket.

The fan-out's cost used to grow per subscriber in Python: every event woke two tasks per
subscriber and was encoded once per subscriber. Now an event is encoded once per wire format
(``SharedEvent``) and, for a subscriber that has caught up (*live*), its frame is written to the
connection synchronously from the upstream's own task — no task wakes per subscriber. A
subscriber that is still replaying, or that saw a gap, is *catching up*: events wait in its
bounded ``pending`` buffer and its own task writes them after the journal's replay. A subscriber
whose connection cannot take more (its outbound queue is full) is cut off and told where to
resume, so it never slows the others.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from gateway.event_frames import SharedEvent
from runtime.model import MemoryEvent


class Sink(Protocol):
    """A connection's send side, as the fan-out sees it."""

    def send_now(self, data: bytes) -> bool:
        """Write (or queue) without waiting; False when the connection cannot take more."""

    async def send_bytes(self, data: bytes) -> None:
        """Write, waiting while the connection is backed up."""


class Member:
    def __init__(self, sink: Sink, head: bytes, *, binary: bool, after_seq: int, capacity: int,
                 ordered: bool = True, on_write: Callable[[int], None] = lambda n: None):
        self.sink = sink
        self.on_write = on_write  # counts catch-up writes (the fan-out counts live ones in bulk)
        self.head = head  # this subscription's frame head (``frame_head``)
        self.binary = binary
        self.last = after_seq  # the last seq written (ordered members)
        self.capacity = capacity
        self.ordered = ordered  # an owner's events have gapless seqs; a tenant's mix owners
        self.live = False
        self.cut = False  # fell behind: the subscription ends with resync_required
        self.delivered = 0
        self.pending: deque[MemoryEvent] = deque()
        self.changed = anyio.Event()  # wakes the member's task: cut, or a gap to fill

    def offer(self, shared: SharedEvent) -> int:
        """One published event; returns 1 if it was written to the connection."""
        if self.cut:
            return 0
        if not self.live:
            self._hold(shared.event)
            return 0
        seq = shared.seq
        if self.ordered:
            if seq <= self.last:
                return 0
            if seq != self.last + 1:  # a gap (a late upstream): the member's task fills it from the journal
                self.live = False
                self._hold(shared.event)
                return 0
        if not self.sink.send_now(shared.frame(self.head, self.binary)):
            self._cut()
            return 0
        if self.ordered:
            self.last = seq
        self.delivered += 1
        return 1

    def _hold(self, event: MemoryEvent) -> None:
        if len(self.pending) >= self.capacity:
            self._cut()
            return
        self.pending.append(event)
        self.changed.set()

    def _cut(self) -> None:
        self.cut = True
        self.live = False
        self.pending.clear()
        self.changed.set()

    def reset_wake(self) -> None:
        if self.changed.is_set():
            self.changed = anyio.Event()

    async def write(self, event: MemoryEvent) -> None:
        await self.sink.send_bytes(SharedEvent(event).frame(self.head, self.binary))
        self.delivered += 1
        self.on_write(1)
        if self.ordered:
            self.last = event.seq

    async def catch_up(self, read_journal: Callable[[int], Awaitable[list[MemoryEvent]]]) -> None:
        """Write everything after ``last`` — the journal's replay, then what arrived meanwhile,
        gaps filled from the journal — and go live. The live queue (``pending``) was registered
        before the first read, so nothing falls between the two; anything at or below the last
        written seq is a duplicate and skipped."""
        replayed = False
        while not self.cut:
            pending = self.pending
            while pending and pending[0].seq <= self.last:
                pending.popleft()
            if pending and pending[0].seq == self.last + 1:
                await self.write(pending.popleft())
                continue
            if not pending and replayed:
                self.live = True  # no await since the check: nothing can slip in between
                return
            page = await read_journal(self.last)
            if not page:
                if pending:  # the journal ends below an event we hold: it was committed, so this
                    self.last = pending[0].seq - 1  # cannot happen; never spin on it
                replayed = True
                continue
            limit = pending[0].seq if pending else None
            for event in page:
                if limit is not None and event.seq >= limit:
                    break
                await self.write(event)
