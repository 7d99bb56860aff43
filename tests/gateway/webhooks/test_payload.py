"""Journal events in Mem0's webhook shape, with memstream's seq and owner."""

from __future__ import annotations

import msgspec
import pytest

from gateway.rest.errors import FieldError
from gateway.webhooks.payload import checked_event_types, delivery_body, event_type, wanted
from runtime.model import MemoryAdded, MemoryDeleted, MemoryUpdated, RelationAdded, Scope

COMMON = dict(owner="user:alex", tenant="t", scope=Scope(user_id="alex", run_id="r1"),
              created_at="2026-01-01T00:00:00+00:00")


def test_add_update_delete_bodies():
    added = msgspec.json.decode(delivery_body("wh_1", MemoryAdded(seq=3, memory_id="m1", memory="Name is Alex",
                                                                  metadata={"k": 1}, **COMMON)))
    assert added["event_details"] == {"id": "m1", "data": {"memory": "Name is Alex", "metadata": {"k": 1}},
                                      "event": "ADD"}
    assert added["seq"] == 3 and added["owner"] == "user:alex" and added["event_type"] == "memory_add"
    assert added["delivery_id"] == "wh_1:user:alex:3" and added["user_id"] == "alex" and added["run_id"] == "r1"
    updated = msgspec.json.decode(delivery_body("wh_1", MemoryUpdated(seq=4, memory_id="m1", memory="Name is Al",
                                                                      old_memory="Name is Alex", **COMMON)))
    assert updated["event_details"]["event"] == "UPDATE" and updated["event_details"]["data"]["old_memory"] == \
        "Name is Alex"
    deleted = msgspec.json.decode(delivery_body("wh_1", MemoryDeleted(seq=5, memory_id="m1", old_memory="Name is Al",
                                                                      **COMMON)))
    assert deleted["event_details"] == {"id": "m1", "data": {"memory": "Name is Al"}, "event": "DELETE"}


def test_filters_and_relations():
    added = MemoryAdded(seq=1, memory_id="m", memory="x", **COMMON)
    relation = RelationAdded(seq=2, relation_id="r", source="a", relationship="likes", destination="b",
                             source_id="1", destination_id="2", valid_at="now", **COMMON)
    assert event_type(added) == "memory_add" and event_type(relation) is None
    assert wanted(added, ["memory_add"]) and not wanted(added, ["memory_delete"])
    assert not wanted(relation, ["memory_add", "memory_update", "memory_delete"])


def test_event_types_are_checked_naming_the_bad_one():
    assert checked_event_types(["memory_add", "memory_add", "memory_delete"]) == ["memory_add", "memory_delete"]
    with pytest.raises(FieldError) as bad:
        checked_event_types(["memory_add", "memory:add"])
    assert bad.value.field == "event_types[1]"
    with pytest.raises(FieldError):
        checked_event_types([])
