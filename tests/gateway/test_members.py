"""The fan-out member's seam, gap and cut-off rules, with an in-memory sink (no sockets)."""

import json

import anyio

from gateway.event_frames import SharedEvent, frame_head
from gateway.members import Member
from runtime.model import MemoryAdded, Scope


def event(seq: int) -> MemoryAdded:
    return MemoryAdded(memory=f"m{seq}", seq=seq, owner="user:u", tenant="t", memory_id=f"id{seq}",
                       scope=Scope(user_id="u"), created_at="2026-12-03T10:00:00+00:00")


class Sink:
    def __init__(self, room: int = 10**6):
        self.frames: list[dict] = []
        self.room = room  # frames it takes before it reports itself full

    def send_now(self, data: bytes) -> bool:
        if len(self.frames) >= self.room:
            return False
        self.frames.append(json.loads(data))
        return True

    async def send_bytes(self, data: bytes) -> None:
        self.frames.append(json.loads(data))

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames]


def member(sink: Sink, after_seq: int = 0, capacity: int = 100) -> Member:
    return Member(sink, frame_head("s", binary=False), binary=False, after_seq=after_seq, capacity=capacity)


def journal(head: int, during_read=None):
    """A journal holding seqs 1..head, pages of 3; ``during_read(after)`` runs inside each read."""
    async def read(after: int) -> list[MemoryAdded]:
        if during_read is not None:
            during_read(after)
        return [event(s) for s in range(after + 1, min(head, after + 3) + 1)]
    return read


async def test_replay_then_live_without_gap_or_duplicate_at_the_seam():
    sink = Sink()
    m = member(sink, after_seq=2)
    published = []

    def commit_while_replaying(after: int) -> None:  # seqs 7 and 8 are committed during the replay
        for seq in (7, 8):
            if after >= 3 and seq not in published:
                published.append(seq)
                m.offer(SharedEvent(event(seq)))

    await m.catch_up(journal(8, commit_while_replaying))
    assert m.live and sink.seqs() == [3, 4, 5, 6, 7, 8]
    for seq in (8, 9, 10):  # 8 is a duplicate of the replay
        m.offer(SharedEvent(event(seq)))
    assert sink.seqs() == [3, 4, 5, 6, 7, 8, 9, 10]


async def test_a_gap_in_live_events_goes_back_to_the_journal():
    sink = Sink()
    m = member(sink)
    await m.catch_up(journal(0))
    assert m.live
    m.offer(SharedEvent(event(1)))
    m.offer(SharedEvent(event(4)))  # 2 and 3 never arrived live
    assert not m.live and m.changed.is_set() and sink.seqs() == [1]
    await m.catch_up(journal(4))
    assert m.live and sink.seqs() == [1, 2, 3, 4]


async def test_a_full_connection_cuts_only_that_member():
    slow, fast = Sink(room=2), Sink()
    members = [member(slow), member(fast)]
    for m in members:
        await m.catch_up(journal(0))
    for seq in range(1, 6):
        shared = SharedEvent(event(seq))
        for m in members:
            m.offer(shared)
    assert members[0].cut and members[0].last == 2 and slow.seqs() == [1, 2]
    assert not members[1].cut and fast.seqs() == [1, 2, 3, 4, 5]


async def test_too_many_events_while_catching_up_cut_the_member():
    m = member(Sink(), capacity=3)
    for seq in range(1, 5):
        m.offer(SharedEvent(event(seq)))
    assert m.cut and not m.pending
    with anyio.fail_after(5):
        await m.catch_up(journal(4))  # returns at once: a cut member writes nothing more
