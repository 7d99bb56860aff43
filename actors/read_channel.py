"""Searches sent to a shard over its Unix socket when the shard runs on this process's node.

``DirectReads`` decides per shard: the socket when the shard says it listens on one on this node,
otherwise (another node, ``ray.direct_reads`` off, or the socket failing) a Ray call, which
waits through a shard's restart as every other call does. A batch whose socket breaks is sent
again over Ray (searches are safe to repeat), and the socket is tried again after a number of
batches that doubles with each failure in a row (``Retries``), so a shard that keeps refusing
costs one failed connect now and then, not one per search.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from typing import Any

import anyio
import msgspec
from anyio.abc import SocketStream

from actors.frames import ChannelBroken, FrameReader, frame
from actors.replies import Reply
from actors.router import Router
from runtime import hops
from runtime.errors import BackendUnavailable

_encode = msgspec.msgpack.Encoder().encode
_decode_replies = msgspec.msgpack.Decoder(tuple[int, list[Reply]]).decode
_GONE = (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class Retries:
    """When to try a shard's socket again (pure): after the n-th failure in a row, the next
    ``2**n`` batches (at most ``cap``) skip it."""

    def __init__(self, cap: int = 1024):
        self.cap = cap
        self.failures = 0
        self.skips_left = 0

    def should_try(self) -> bool:
        if self.skips_left > 0:
            self.skips_left -= 1
            return False
        return True

    def failed(self) -> None:
        self.failures += 1
        self.skips_left = min(2 ** self.failures, self.cap)

    def succeeded(self) -> None:
        self.failures = self.skips_left = 0


class ReadChannel:
    """One connection to a shard's read socket. Calls are multiplexed by id, so the batches a
    search batcher keeps out at once share it; when the connection breaks, every waiting call
    fails with ``ChannelBroken``."""

    def __init__(self, stream: SocketStream):
        self._stream = stream
        self._pending: dict[int, asyncio.Future[list[Reply]]] = {}
        self._ids = itertools.count()
        self._sending = anyio.Lock()
        self.broken: ChannelBroken | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read_replies(FrameReader(stream)),
                                                              context=contextvars.Context())

    @classmethod
    async def connect(cls, path: str) -> ReadChannel:
        try:
            return cls(await anyio.connect_unix(path))
        except OSError as exc:
            raise ChannelBroken(f"cannot connect to the shard's read socket {path}: {exc}") from None

    async def call(self, requests: list[dict[str, Any]], timeout_s: float) -> list[Reply]:
        if self.broken is not None:
            raise self.broken
        request_id = next(self._ids)
        future: asyncio.Future[list[Reply]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            data = frame(_encode((request_id, requests)))
            try:
                async with self._sending:
                    await self._stream.send(data)
            except _GONE as exc:
                self._break(ChannelBroken(f"the shard's read socket is closed: {exc!r}"))
            try:
                with anyio.fail_after(timeout_s):
                    return await future
            except TimeoutError:
                raise BackendUnavailable(f"the shard did not answer a search within {timeout_s}s",
                                         backend="shard") from None
        finally:
            self._pending.pop(request_id, None)

    async def _read_replies(self, reader: FrameReader) -> None:
        try:
            while True:
                request_id, replies = _decode_replies(await reader.receive())
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result(replies)
        except (*_GONE, ChannelBroken, msgspec.DecodeError) as exc:
            self._break(ChannelBroken(f"the shard's read socket closed: {exc!r}"))
        finally:
            await self._stream.aclose()

    def _break(self, error: ChannelBroken) -> None:
        if self.broken is None:
            self.broken = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self.broken)

    def close(self) -> None:
        try:
            self._reader.cancel()
        except RuntimeError:  # its event loop is already closed, and the socket with it
            pass


class DirectReads:
    """Per shard, the channel to use for a batch of searches (one instance per event loop)."""

    def __init__(self, router: Router, node_id: str, *, enabled: bool = True, timeout_s: float = 300.0):
        self._router = router
        self._node_id = node_id
        self._enabled = enabled
        self._timeout_s = timeout_s
        self._channels: dict[str, ReadChannel] = {}
        self._retries: dict[str, Retries] = {}
        self._connecting: dict[str, anyio.Lock] = {}
        self.counts = {"socket": 0, "ray": 0, "fallback": 0}

    async def search_many(self, shard: str, requests: list[dict[str, Any]]) -> list[Reply]:
        channel = await self._channel(shard) if self._enabled else None
        if channel is not None:
            started = time.perf_counter()
            try:
                replies = await channel.call(requests, self._timeout_s)
            except ChannelBroken:
                self._drop(shard)
                self.counts["fallback"] += 1
            else:
                self.counts["socket"] += 1
                return _marked(replies, hops.since(started))
        self.counts["ray"] += 1
        return await self._router.call(shard, "search_many", {"requests": requests})

    async def _channel(self, shard: str) -> ReadChannel | None:
        channel = self._channels.get(shard)
        if channel is not None and channel.broken is None:
            return channel
        lock = self._connecting.setdefault(shard, anyio.Lock())
        async with lock:  # one connect per shard, however many batches are waiting for it
            channel = self._channels.get(shard)
            if channel is not None and channel.broken is None:
                return channel
            retries = self._retries.setdefault(shard, Retries())
            if not retries.should_try():
                return None
            endpoint = await self._router.call(shard, "read_endpoint", {})
            if endpoint is None or endpoint["node"] != self._node_id:  # no socket, or not on this node
                retries.failed()
                return None
            try:
                channel = self._channels[shard] = await ReadChannel.connect(endpoint["path"])
            except ChannelBroken:
                retries.failed()
                return None
            retries.succeeded()
            return channel

    def _drop(self, shard: str) -> None:
        channel = self._channels.pop(shard, None)
        if channel is not None:
            channel.close()
        self._retries.setdefault(shard, Retries()).failed()

    def close(self) -> None:
        for shard in list(self._channels):
            self._channels.pop(shard).close()


def _marked(replies: list[Reply], call_ms: float) -> list[Reply]:
    """Each successful reply's hops get ``read_socket_ms`` (the socket round trip of its batch), so
    the gateway's hop counters say how many searches took the socket and what it cost."""
    for reply in replies:
        if reply.error is None:
            reply.extra.setdefault("hops", {})["read_socket_ms"] = call_ms
    return replies
