"""Event frames spliced from shared bytes are byte-for-byte what the codec would encode."""

import pytest

from gateway import protocol as p
from gateway.event_frames import SharedEvent, frame_head
from runtime.model import MemoryAdded, MemoryDeleted, RelationAdded, Scope

SCOPE = Scope(user_id="alice")
EVENTS = [
    MemoryAdded(memory="Likes tea", metadata={"k": [1, "ü"]}, seq=7, owner="user:alice", tenant="t",
                memory_id="m1", scope=SCOPE, created_at="2026-12-03T10:00:00+00:00", cause="req-1"),
    MemoryDeleted(old_memory="Likes tea", seq=8, owner="user:alice", tenant="t", memory_id="m1", scope=SCOPE,
                  created_at="2026-12-03T10:00:01+00:00", version=3),
    RelationAdded(seq=9, owner="user:alice", tenant="t", relation_id="r1", scope=SCOPE,
                  created_at="2026-12-03T10:00:02+00:00", source="alice", relationship="owns",
                  destination="pixel", source_id="e1", destination_id="e2", valid_at="2026-12-03"),
]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("subscription", ["s", "sub-12", 0, 42, 2**40, -3, "ünïcode \"quoted\""])
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_spliced_frame_equals_encoded_frame(event, subscription, binary):
    codec = p.Codec(binary=binary)
    expected = codec.encode(p.Event(subscription=subscription, seq=event.seq, owner=event.owner, event=event))
    shared = SharedEvent(event)
    assert shared.frame(frame_head(subscription, binary=binary), binary) == expected


def test_body_encoded_once_per_format():
    shared = SharedEvent(EVENTS[0])
    assert shared.body(False) is shared.body(False)
    assert shared.body(True) is shared.body(True)
    assert shared.body(True) != shared.body(False)
