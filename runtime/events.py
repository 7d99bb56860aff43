"""Live event fan-out: committed changes → subscribers' bounded queues.

The engine publishes its journal entries here as each commit lands; ``subscribe`` reads them
back (replay from the journal first, then live from here, without a gap or a repeat at the seam).

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
        self._tenant_subscribers: dict[str, set[_Subscriber]] = {}

    def publish(self, entries: list[JournalEntry]) -> None:
        """Committed journal entries; converted to events only when someone listens."""
        self.publish_events([event_from_entry(e) for e in entries if self._listened((e.tenant, e.owner))])

    def _listened(self, key: tuple[str, str]) -> bool:
        return key in self._subscribers or key[0] in self._tenant_subscribers

    def publish_events(self, events: list[MemoryEvent]) -> None:
        """Route events to their owner's and their tenant's subscribers; never waits."""
        for event in events:
            owner_targets = self._subscribers.get((event.tenant, event.owner), ())
            tenant_targets = self._tenant_subscribers.get(event.tenant, ())
            for subscriber in [*owner_targets, *tenant_targets]:
                if subscriber.overflowed:
                    continue
                try:
                    subscriber.send.send_nowait(event)
                except anyio.WouldBlock:
                    subscriber.overflowed = True
                    subscriber.send.close()

    def queued(self) -> int:
        """Events waiting in subscribers' queues (a gauge for metrics)."""
        everyone = [*self._subscribers.values(), *self._tenant_subscribers.values()]
        return sum(sub.receive.statistics().current_buffer_used for group in everyone for sub in group)

    def subscriber_count(self) -> int:
        return (sum(len(s) for s in self._subscribers.values())
                + sum(len(s) for s in self._tenant_subscribers.values()))

    async def stream_tenant(self, tenant: str) -> AsyncIterator[MemoryEvent]:
        """Every owner's events of a tenant, live from now (each event carries its owner and
        per-owner seq). For a gapless resume, subscribe per owner with ``after_seq``."""
        subscriber = _Subscriber(self.capacity)
        self._tenant_subscribers.setdefault(tenant, set()).add(subscriber)
        try:
            async for event in subscriber.receive:
                yield event
            if subscriber.overflowed:
                raise ResyncRequired(0)
        finally:
            targets = self._tenant_subscribers.get(tenant)
            if targets is not None:
                targets.discard(subscriber)
                if not targets:
                    del self._tenant_subscribers[tenant]
            subscriber.send.close()
            subscriber.receive.close()

    async def stream(
        self, tenant: str, owner: str, after_seq: int,
        read_journal: Callable[[int], Awaitable[list[MemoryEvent]]],
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
                for event in page:
                    yield event
                    last = event.seq
            async for event in subscriber.receive:
                if event.seq <= last:
                    continue
                if event.seq > last + 1:  # a gap (a late upstream): fill it from the journal
                    for missed in await read_journal(last):
                        if missed.seq >= event.seq:
                            break
                        yield missed
                        last = missed.seq
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
