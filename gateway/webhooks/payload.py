"""What a webhook receives: one journal event in Mem0's webhook shape, plus memstream's order.

    {"event_details": {"id": "<memory id>", "data": {"memory": "Name is Alex"}, "event": "ADD"},
     "event_type": "memory_add", "seq": 12, "owner": "user:alex", "webhook_id": "wh_...",
     "delivery_id": "wh_...:user:alex:12", "created_at": "...", "user_id": "alex"}

``event_details`` is Mem0's; the rest is memstream's: ``seq`` is the owner's gapless journal
sequence (deliveries of one owner come in ``seq`` order; a redelivery carries the same ``seq``
and ``delivery_id``, so a receiver dedupes on them). Relation events (graph memory) have no
Mem0 webhook type and are not delivered. Pure.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from gateway.rest.errors import FieldError
from runtime.model import MemoryAdded, MemoryDeleted, MemoryEvent, MemoryUpdated

EventType = Literal["memory_add", "memory_update", "memory_delete"]
EVENT_TYPES: tuple[EventType, ...] = ("memory_add", "memory_update", "memory_delete")
_KINDS: dict[type, tuple[EventType, str]] = {MemoryAdded: ("memory_add", "ADD"),
                                            MemoryUpdated: ("memory_update", "UPDATE"),
                                            MemoryDeleted: ("memory_delete", "DELETE")}


class EventDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    data: dict[str, Any]
    event: str


class Delivery(msgspec.Struct, kw_only=True, omit_defaults=True):
    event_details: EventDetails
    event_type: str
    seq: int
    owner: str
    webhook_id: str
    delivery_id: str
    created_at: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None


_encode = msgspec.json.Encoder().encode


def event_type(event: MemoryEvent) -> EventType | None:
    kind = _KINDS.get(type(event))
    return kind[0] if kind else None


def wanted(event: MemoryEvent, event_types: list[str]) -> bool:
    kind = event_type(event)
    return kind is not None and kind in event_types


def checked_event_types(values: list[str], field: str = "event_types") -> list[str]:
    """The event types a webhook asks for, each one Mem0 knows, without repeats."""
    if not values:
        raise FieldError(field, f"name at least one of {', '.join(EVENT_TYPES)}")
    for index, value in enumerate(values):
        if value not in EVENT_TYPES:
            raise FieldError(f"{field}[{index}]", f"{value!r} is not one of {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(values))


def delivery_body(webhook_id: str, event: MemoryEvent) -> bytes:
    kind = _KINDS[type(event)]
    data: dict[str, Any] = {}
    if isinstance(event, MemoryAdded | MemoryUpdated):
        data = {"memory": event.memory, "metadata": event.metadata}
        if isinstance(event, MemoryUpdated):
            data["old_memory"] = event.old_memory
    elif isinstance(event, MemoryDeleted):
        data = {"memory": event.old_memory}
    scope = event.scope
    return _encode(Delivery(
        event_details=EventDetails(id=event.memory_id, data=data, event=kind[1]), event_type=kind[0],
        seq=event.seq, owner=event.owner, webhook_id=webhook_id,
        delivery_id=f"{webhook_id}:{event.owner}:{event.seq}", created_at=event.created_at,
        user_id=scope.user_id, agent_id=scope.agent_id, run_id=scope.run_id))
