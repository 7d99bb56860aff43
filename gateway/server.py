"""The gateway process: a websockets (asyncio API) server in front of the memory API.

WebSocket upgrades on any path get a ``Connection``. Every other HTTP request on the same port
is handed to the HTTP face (``gateway.web``): the live viewer (``/``), Prometheus metrics
(``/metrics``), a health check (``/healthz``), the protocol document (``/protocol.json``) — their
content is defined here, ``Gateway.page`` — and the Mem0-compatible REST API with its webhooks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from importlib import resources

import anyio
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.protocol import State

from gateway import protocol as p
from gateway.connection import CLOSE_GOING_AWAY, Connection
from gateway.dispatch import Dispatcher, MemoryBackend
from gateway.fanout import Fanout
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.metrics import GatewayMetrics
from gateway.web.app import WebFace
from runtime.config import Config

log = structlog.get_logger("memstream.gateway")


def _viewer_html() -> str:
    return resources.files("gateway").joinpath("viewer/index.html").read_text(encoding="utf-8")


class Gateway:
    def __init__(self, config: Config, memory: MemoryBackend, *, secret: str,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock  # the wall clock that tokens expire by (injected: expiry is tested without sleeping)
        self.settings = config.gateway
        self.secret = secret
        self.dispatcher = Dispatcher(memory)
        self.metrics = GatewayMetrics()
        self.fanout = Fanout(memory, config.memory.subscriber_queue, on_published=self.metrics.observe_fanout)
        self.connections: set[Connection] = set()
        self.draining = False
        self.port: int | None = None
        self._idle = anyio.Event()
        self._viewer = _viewer_html()
        self._schema = json.dumps(p.protocol_schema(), indent=2)
        self.metrics.track_queues(lambda: sum(c.outbound_depth() for c in self.connections),
                                  self.fanout.pending)
        self.web = WebFace(self)

    async def serve(self, stop: anyio.Event, *, task_status: anyio.abc.TaskStatus[Gateway] = anyio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Listen until ``stop`` is set, then shut down gracefully."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.fanout.run)
            await tg.start(self.web.run)
            await self._listen(stop, task_status)
            tg.cancel_scope.cancel()

    async def _listen(self, stop: anyio.Event, task_status: anyio.abc.TaskStatus[Gateway]) -> None:
        origins: list[str | None] | None = None
        if self.settings.allowed_origins is not None:
            origins = [*self.settings.allowed_origins, None]  # None: non-browser clients send no Origin
        async with serve(self._handle, self.settings.host, self.settings.port,
                         subprotocols=[p.SUBPROTOCOL_MSGPACK, p.SUBPROTOCOL_JSON],
                         select_subprotocol=_select_subprotocol,
                         process_request=self._http, max_size=self.settings.max_frame_bytes, origins=origins,
                         compression=None, ping_interval=self.settings.ping_interval_s,
                         ping_timeout=self.settings.ping_timeout_s, max_queue=16,
                         reuse_port=self.settings.reuse_port or self.settings.processes > 1,
                         server_header="memstream", create_connection=self.web.connection_factory()) as server:
            self.port = server.sockets[0].getsockname()[1]
            log.info("gateway_listening", host=self.settings.host, port=self.port)
            task_status.started(self)
            await stop.wait()
            await self._shutdown(server)

    async def _shutdown(self, server: Server) -> None:
        """Stop accepting, let every connection finish what it accepted, then close (1001)."""
        self.draining = True
        log.info("gateway_draining", connections=len(self.connections))
        server.close(close_connections=False)
        for connection in list(self.connections):
            connection.drain()
        with anyio.move_on_after(self.settings.shutdown_grace_s + 5):
            while self.connections:
                self._idle = anyio.Event()
                await self._idle.wait()
        await self.web.drain()
        # websockets' Server.close() acts once (it ran above without closing connections), so the
        # connections still open after the grace period are closed here
        with anyio.move_on_after(15):
            async with anyio.create_task_group() as closing:
                for ws in list(server.connections):
                    closing.start_soon(ws.close, CLOSE_GOING_AWAY, "server shutting down")
        await server.wait_closed()
        log.info("gateway_stopped")

    async def _handle(self, ws: ServerConnection) -> None:
        connection = Connection(ws, self)
        self.connections.add(connection)
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()
        try:
            if self.draining:
                connection.drain()
            await connection.run()
        finally:
            self.connections.discard(connection)
            self.metrics.connections.dec()
            if not self.connections:
                self._idle.set()

    def _at_capacity(self) -> bool:
        """Whether ``max_connections`` sockets are open. A connection whose socket is already gone
        but whose accepted requests are still finishing (within the grace period) is not counted:
        under a storm of cut connections those are exactly the clients dialling back in to re-send,
        and refusing them for the sockets they just lost would lock them out."""
        if len(self.connections) < self.settings.max_connections:
            return False  # the common case, without a walk over every connection
        open_sockets = sum(1 for c in self.connections if c.ws.state is not State.CLOSED)
        return open_sockets >= self.settings.max_connections

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if "websocket" in request.headers.get("Upgrade", "").lower():
            if self.draining:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "server shutting down\n")
            if self._at_capacity():
                self.metrics.rejected.labels("max_connections").inc()
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, "not a WebSocket upgrade\n")  # plain HTTP goes to self.web

    def page(self, path: str) -> tuple[str, str] | None:
        """The body and content type of the plain-HTTP page at ``path``, or None."""
        if path in ("/", "/index.html"):
            return self._viewer, "text/html; charset=utf-8"
        if path == "/metrics":
            return self.metrics.render().decode(), METRICS_CONTENT_TYPE
        if path == "/healthz":
            body = json.dumps({"status": "draining" if self.draining else "ok", "connections": len(self.connections)})
            return body, "application/json"
        if path == "/protocol.json":
            return self._schema, "application/json"
        return None


def _select_subprotocol(connection: ServerConnection, offered: Sequence[str]) -> str | None:
    """MessagePack if offered, else JSON; a client that offers nothing (a plain WebSocket) gets JSON."""
    for choice in (p.SUBPROTOCOL_MSGPACK, p.SUBPROTOCOL_JSON):
        if choice in offered:
            return choice
    return None


__all__ = ["Gateway"]
