"""Event frames encoded once per event and wire format, not once per subscriber.

An ``event`` frame differs between the subscribers of one owner only in its ``subscription``
field (each client names its subscriptions). So the event's fields are encoded once per format
and each subscriber's frame is its own precomputed head (``type`` and ``subscription``) joined to
those shared bytes: the same bytes a ``Codec.encode(p.Event(...))`` would give, at the cost of a
bytes join. With 1,000 subscribers of one owner, encoding per subscriber was a large part of
the fan-out's cost.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway import protocol as p
from runtime.model import MemoryEvent


class _EventFields(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``p.Event``'s fields after ``subscription``, in the same order."""

    seq: int
    owner: str
    event: MemoryEvent


_JSON = msgspec.json.Encoder()
_MSGPACK = msgspec.msgpack.Encoder()
_EVENT_FIELDS = len(p.Event.__struct_fields__) + 1  # + the ``type`` tag
assert p.Event.__struct_fields__ == ("subscription", *_EventFields.__struct_fields__), \
    "p.Event's fields changed: keep _EventFields in step"
assert _EVENT_FIELDS <= 15, "the MessagePack head below assumes a fixmap"


def frame_head(subscription: p.RequestId, *, binary: bool) -> bytes:
    """The bytes of an event frame before its shared fields, for one subscription."""
    if binary:
        return (bytes([0x80 | _EVENT_FIELDS]) + _MSGPACK.encode("type") + _MSGPACK.encode("event")
                + _MSGPACK.encode("subscription") + _MSGPACK.encode(subscription))
    return b'{"type":"event","subscription":' + _JSON.encode(subscription) + b","


class SharedEvent:
    """One event, its shared bytes encoded lazily and at most once per format."""

    __slots__ = ("event", "_json", "_msgpack")

    def __init__(self, event: MemoryEvent):
        self.event = event
        self._json: bytes | None = None
        self._msgpack: bytes | None = None

    @property
    def seq(self) -> int:
        return self.event.seq

    def body(self, binary: bool) -> bytes:
        """The shared fields without their container's head (``{`` / the fixmap byte)."""
        if binary:
            if self._msgpack is None:
                self._msgpack = _MSGPACK.encode(self._fields())[1:]
            return self._msgpack
        if self._json is None:
            self._json = _JSON.encode(self._fields())[1:]
        return self._json

    def frame(self, head: bytes, binary: bool) -> bytes:
        return head + self.body(binary)

    def _fields(self) -> Any:
        return _EventFields(seq=self.event.seq, owner=self.event.owner, event=self.event)
