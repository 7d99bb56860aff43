"""A shard's Unix socket for searches from processes on its own node (the shard side).

A search sent as a Ray actor call pays Ray's transport both ways: ~3.4 ms at load 3.8 on this
project's 2-core machine, more than the vector search and the query's embedding together
(README "Measured"). A gateway on the shard's node can instead write the same batch of searches
to this socket and get the same replies. Ray stays the control path: the gateway learns the
socket's path from a Ray call, and anything that goes wrong on the socket is sent again over
Ray, whose restart handling still applies (searches are safe to repeat).

The socket lives in a fresh directory only this user can open (mode 0700), which is the boundary
that already guards Ray's session files on the node; Ray's token guards calls between machines,
which this channel never makes.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
import structlog
from anyio.abc import SocketListener, SocketStream

from actors.frames import ChannelBroken, FrameReader, frame
from actors.replies import Reply

log = structlog.get_logger("memstream.read_server")

Handler = Callable[[list[dict[str, Any]]], Awaitable[list[Reply]]]
_decode_request = msgspec.msgpack.Decoder(tuple[int, list[dict[str, Any]]]).decode
_encode = msgspec.msgpack.Encoder().encode
_GONE = (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError)


class ReadServer:
    """Serves ``handler`` (a batch of search requests → one reply each) to every connection; up to
    ``max_concurrent`` batches per connection run at once, and a connection that sends more waits
    (the kernel's socket buffer then pushes back on the sender)."""

    def __init__(self, handler: Handler, *, max_concurrent: int = 8):
        self._handler = handler
        self._max_concurrent = max_concurrent
        self._directory: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting: anyio.Lock | None = None
        self.path: str | None = None

    async def start(self) -> str:
        """Listen (once) and return the socket's path. Runs on the actor's event loop, which then
        serves the connections beside the actor's Ray calls."""
        if self._starting is None:
            self._starting = anyio.Lock()
        async with self._starting:  # two gateways asking at once get the same socket
            if self.path is None:
                self._directory = tempfile.mkdtemp(prefix="memstream-reads-")  # mode 0700
                path = os.path.join(self._directory, "shard.sock")
                listener = await anyio.create_unix_listener(path)
                # a fresh context: the server must not keep the first caller's trace (runtime.hops)
                self._task = asyncio.get_running_loop().create_task(self._listen(listener),
                                                                    context=contextvars.Context())
                self.path = path
                log.info("read_socket_listening", path=path)
            return self.path

    async def _listen(self, listener: SocketListener) -> None:
        async with listener:  # closed when the task is cancelled
            await listener.serve(self._serve)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._task = self._directory = self.path = None

    async def _serve(self, stream: SocketStream) -> None:
        reader = FrameReader(stream)
        slots = anyio.Semaphore(self._max_concurrent)
        sending = anyio.Lock()
        async with stream, anyio.create_task_group() as answers:
            while True:
                try:
                    request_id, requests = _decode_request(await reader.receive())
                except (*_GONE, ChannelBroken, msgspec.DecodeError):
                    break
                await slots.acquire()
                answers.start_soon(self._answer, stream, sending, slots, request_id, requests)
            answers.cancel_scope.cancel()  # the peer is gone: nobody reads what is still running

    async def _answer(self, stream: SocketStream, sending: anyio.Lock, slots: anyio.Semaphore, request_id: int,
                      requests: list[dict[str, Any]]) -> None:
        try:
            try:
                replies = await self._handler(requests)
            except Exception as exc:  # the handler answers typed errors per request; this is a bug
                log.exception("read_socket_handler_failed")
                replies = [Reply(error="internal", message=f"search failed: {exc}")] * len(requests)
            data = frame(_encode((request_id, replies)))
            async with sending:
                await stream.send(data)
        except _GONE:
            pass
        finally:
            slots.release()
