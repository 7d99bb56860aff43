"""Live event fan-out: committed journal entries → subscribers' bounded queues.

Publishing never waits: a subscriber whose queue is full is cut off and told where to
resume (``ResyncRequired``), so one slow reader cannot slow writers or other readers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from runtime.errors import MemstreamError
from runtime.model import JournalEntry, MemoryEvent, event_from_entry


class ResyncRequired(MemstreamError):
    """The subscriber fell behind; resubscribe with ``after_seq = from_seq``."""

    code = "resync_required"

    def __init__(self, from_seq: int):
        super().__init__(f"subscriber fell behind; resume from seq {from_seq}")
        self.from_seq = from_seq


class _Subscriber:
    def __init__(self, capacity: int):
        self.send: MemoryObjectSendStream[MemoryEvent]
        self.receive: MemoryObjectReceiveStream[MemoryEvent]
        self.send, self.receive = anyio.create_memory_object_stream[MemoryEvent](capacity)
        self.overflowed = False


class EventHub:
    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self._subscribers: dict[tuple[str, str], set[_Subscriber]] = {}

    def publish(self, entries: list[JournalEntry]) -> None:
        for entry in entries:
            targets = self._subscribers.get((entry.tenant, entry.owner))
            if not targets:
                continue
            event = event_from_entry(entry)
            for subscriber in list(targets):
                if subscriber.overflowed:
                    continue
                try:
                    subscriber.send.send_nowait(event)
                except anyio.WouldBlock:
                    subscriber.overflowed = True
                    subscriber.send.close()

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def stream(
        self, tenant: str, owner: str, after_seq: int,
        read_journal: Callable[[int], Awaitable[list[JournalEntry]]],
    ) -> AsyncIterator[MemoryEvent]:
        """Replay ``(after_seq, head]`` from the journal, then live events - no gap, no duplicate
        at the seam: the live queue is registered before the replay starts and anything it holds
        at or below the last replayed seq is skipped."""
        key = (tenant, owner)
        subscriber = _Subscriber(self.capacity)
        self._subscribers.setdefault(key, set()).add(subscriber)
        last = after_seq
        try:
            while True:
                page = await read_journal(last)
                if not page:
                    break
                for entry in page:
                    yield event_from_entry(entry)
                    last = entry.seq
            async for event in subscriber.receive:
                if event.seq <= last:
                    continue
                if event.seq > last + 1:  # should not happen; fill from the journal rather than skip
                    for entry in await read_journal(last):
                        if entry.seq >= event.seq:
                            break
                        yield event_from_entry(entry)
                        last = entry.seq
                yield event
                last = event.seq
            if subscriber.overflowed:
                raise ResyncRequired(last)
        finally:
            targets = self._subscribers.get(key)
            if targets is not None:
                targets.discard(subscriber)
                if not targets:
                    del self._subscribers[key]
            subscriber.send.close()
            subscriber.receive.close()
