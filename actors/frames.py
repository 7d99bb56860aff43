"""Length-prefixed msgpack frames over a byte stream: the wire format of the direct read channel.

A Unix socket carries bytes, not messages, so each frame is a 4-byte big-endian length and a
msgpack body. A length over ``max_bytes`` means a broken or foreign peer: the reader refuses it
instead of allocating it, and the connection is dropped.
"""

from __future__ import annotations

import struct

from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from runtime.errors import BackendUnavailable

_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ChannelBroken(BackendUnavailable):
    """The direct channel to a shard failed (closed, refused, or spoke nonsense). Reads are safe to
    repeat, so its callers send the work over Ray instead; a user never sees this."""

    def __init__(self, message: str):
        super().__init__(message, backend="shard")


def frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    def __init__(self, stream: ByteStream, max_bytes: int = MAX_FRAME_BYTES):
        self._buffered = BufferedByteReceiveStream(stream)
        self._max_bytes = max_bytes

    async def receive(self) -> bytes:
        """The next frame's body; ``anyio.EndOfStream`` / ``anyio.IncompleteRead`` when the peer is gone."""
        (length,) = _LENGTH.unpack(await self._buffered.receive_exactly(_LENGTH.size))
        if length > self._max_bytes:
            raise ChannelBroken(f"a frame of {length} bytes is over the {self._max_bytes}-byte limit")
        return await self._buffered.receive_exactly(length)
