"""WebSocket and plain HTTP on one listening socket.

websockets' ``serve`` accepts every connection and builds a ``ServerConnection`` for it (through
``create_connection``, its documented extension point). ``SharedPortConnection`` is that
connection, holding back: until the request head shows what the client wants
(``gateway.web.sniff``), it only buffers bytes. A WebSocket upgrade then starts the ordinary
websockets connection with the buffered bytes, exactly as if it had read them itself; anything
else moves the socket to the HTTP application's protocol (``transport.set_protocol``, asyncio's
public API) and websockets never learns of it. After that choice a WebSocket's frames take the
same path as before: the only cost is one attribute check per read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gateway.keepalive import GatewayConnection
from gateway.web.sniff import route

HEAD_TIMEOUT_S = 10.0  # websockets' own opening-handshake timeout: a silent socket is dropped after it


class SharedPortConnection(GatewayConnection):
    """A gateway connection that first decides whether it is one (``http``: the protocol factory
    of the HTTP application, e.g. ``aiohttp.web.AppRunner.server``)."""

    def __init__(self, *args: Any, http: Callable[[], asyncio.Protocol], head_timeout_s: float = HEAD_TIMEOUT_S,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._http = http
        self._head_timeout_s = head_timeout_s
        self._head: bytearray | None = bytearray()  # None once the connection's route is chosen
        self._waiting: asyncio.Transport | None = None
        self._give_up: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._waiting = transport  # type: ignore[assignment]
        self._give_up = self.loop.call_later(self._head_timeout_s, transport.abort)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            super().data_received(data)
            return
        self._head += data
        chosen = route(bytes(self._head))
        if chosen is None:
            return
        head, transport = bytes(self._head), self._waiting
        assert transport is not None and self._give_up is not None
        self._give_up.cancel()
        self._head = self._waiting = self._give_up = None
        if chosen == "websocket":
            super().connection_made(transport)
            super().data_received(head)
            return
        protocol = self._http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(head)

    def eof_received(self) -> bool | None:
        if self._head is not None:
            return None  # the client left before saying what it wanted: close
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head is not None:  # never handed to websockets: nothing of it to tear down
            if self._give_up is not None:
                self._give_up.cancel()
            self._head, self._waiting = None, None
            return
        super().connection_lost(exc)


__all__ = ["SharedPortConnection"]
