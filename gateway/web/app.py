"""The aiohttp application behind the gateway's plain-HTTP requests, and its lifecycle.

It serves the pages (viewer, metrics, health, protocol document — their content is the
gateway's, ``Gateway.page``), ``/openapi.json``, the Mem0-compatible REST API and webhook
administration. Requests are answered from a route table (``gateway.rest.api.Route``): the API
key is verified like a WebSocket ``auth`` frame, the body and query are decoded with msgspec,
the handler's reply is encoded with msgspec, and every failure becomes a JSON error naming the
field at fault (``gateway.rest.errors``) — a malformed request is never a 500.

aiohttp serves these connections without a listening socket of its own: the gateway's
websockets server accepts them and hands over the ones that are not WebSocket upgrades
(``gateway.web.shared_port``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import structlog
from aiohttp import web

from gateway.auth import Grant, verify_token
from gateway.host import Host
from gateway.rest import account, memories
from gateway.rest.api import Call, Route, Services
from gateway.rest.background import BackgroundAdds
from gateway.rest.errors import ErrorBody, FieldError, error_reply, http_error, validation_error
from gateway.rest.openapi import openapi_document
from gateway.web.shared_port import SharedPortConnection
from gateway.webhooks.admin import WebhookAdmin
from runtime.errors import MemstreamError, Unauthenticated

log = structlog.get_logger("memstream.gateway.rest")
_encode = msgspec.json.Encoder().encode
_JSON = "application/json"
PAGES = ("/", "/index.html", "/metrics", "/healthz", "/protocol.json")


def rest_routes(webhooks: bool = True) -> list[Route]:
    from gateway.webhooks import routes as webhook_routes

    return [*memories.ROUTES, *account.ROUTES, *(webhook_routes.ROUTES if webhooks else [])]


def bearer(header: str | None) -> str:
    """The token of ``Authorization: Token <token>`` (Mem0's scheme) or ``Bearer <token>``."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        raise Unauthenticated("send the API key as 'Authorization: Token <memstream token>'")
    return token.strip()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type=_JSON, headers=headers)


class WebFace:
    """The HTTP side of one gateway: the application, its runner, the background adds and the
    webhook deliveries."""

    def __init__(self, gateway: Host):
        self.gateway = gateway
        settings = gateway.config.gateway.rest
        self.background = BackgroundAdds(capacity=settings.max_pending_adds, keep=settings.keep_events)
        self.webhooks = WebhookAdmin(gateway.config, gateway.dispatcher.memory, gateway.metrics.registry) \
            if gateway.config.webhooks.enabled else None
        self.services = Services(gateway.config, gateway.dispatcher, self.background, self.webhooks)
        self.routes = rest_routes(webhooks=self.webhooks is not None)
        self.openapi = _encode(openapi_document(self.routes))
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ----
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Ready the application, then host the background adds and webhook deliveries until the
        gateway's task group ends."""
        runner = web.AppRunner(self._application(), access_log=None, handle_signals=False,
                               shutdown_timeout=self.gateway.settings.shutdown_grace_s)
        await runner.setup()
        self._runner = runner
        async with anyio.create_task_group() as tg:
            await tg.start(self.background.run)
            if self.webhooks is not None:
                await tg.start(self.webhooks.run)
            task_status.started()

    def connection_factory(self) -> Callable[..., SharedPortConnection]:
        """websockets' ``create_connection``: every accepted socket, WebSocket or HTTP."""
        assert self._runner is not None and self._runner.server is not None, "WebFace.run has not started"
        return functools.partial(SharedPortConnection, http=self._runner.server)

    async def drain(self) -> None:
        """Refuse new adds, finish the accepted ones (within the grace period), close HTTP connections."""
        await self.background.close(self.gateway.settings.shutdown_grace_s)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- the application ----
    def _application(self) -> web.Application:
        app = web.Application(client_max_size=self.gateway.settings.max_frame_bytes, middlewares=[_errors])
        for path in PAGES:
            app.router.add_get(path, self._page)
        app.router.add_get("/openapi.json", self._openapi)
        for route in self.routes:
            app.router.add_route(route.method, route.path, functools.partial(self._serve, route))
        return app

    async def _page(self, request: web.Request) -> web.Response:
        page = self.gateway.page(request.path)
        assert page is not None, f"{request.path} is registered as a page"
        body, content_type = page
        response = web.Response(text=body, headers={"Cache-Control": "no-store"})
        response.headers["Content-Type"] = content_type
        return response

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, content_type=_JSON)

    async def _serve(self, route: Route, request: web.Request) -> web.Response:
        metrics = self.gateway.metrics
        kind, started, status, tenant = f"rest_{route.name}", time.perf_counter(), 200, None
        try:
            grant = self._authenticate(request)
            tenant = grant.tenant
            call = Call(grant=grant, body=await _body(route, request), query=_query(route, request),
                        params=dict(request.match_info), headers=request.headers, url=request.url,
                        services=self.services)
            with anyio.fail_after(self.gateway.settings.request_timeout_s):
                reply = await route.handler(call)
            return _json(reply)
        except MemstreamError as exc:
            status, body, headers = error_reply(exc)
            if status == 500:
                log.exception("rest_request_failed", op=route.name)
            return _json(body, status, headers)
        except web.HTTPException as exc:  # aiohttp's own: a body over the size limit
            status = exc.status
            raise
        except TimeoutError:
            status = 504
            return _json(ErrorBody(detail=f"no answer within {self.gateway.settings.request_timeout_s}s",
                                   code="timeout"), status)
        finally:
            outcome = "ok" if status < 400 else str(status)
            elapsed = time.perf_counter() - started
            metrics.requests.labels(kind, outcome).inc()
            metrics.latency.labels(kind).observe(elapsed)
            log.info("rest_request", op=route.name, status=status, ms=round(elapsed * 1000, 2), tenant=tenant)

    def _authenticate(self, request: web.Request) -> Grant:
        try:
            return verify_token(self.gateway.secret, bearer(request.headers.get("Authorization")),
                                now=self.gateway.clock())
        except Unauthenticated:
            self.gateway.metrics.rejected.labels("unauthenticated").inc()
            raise


async def _body(route: Route, request: web.Request) -> Any:
    if route.body is None:
        return None
    raw = (await request.read()).strip() or b"{}"  # no body: the missing fields are named
    try:
        return msgspec.json.decode(raw, type=route.body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise FieldError("body", f"not valid JSON: {exc}") from None


def _query(route: Route, request: web.Request) -> Any:
    if route.query is None:
        return None
    try:
        return msgspec.convert(dict(request.query), route.query, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, where="query") from None


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own refusals (no route, wrong method, body too large) as JSON errors too; anything
    unexpected is logged and answered 500 without its text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(http_error(exc.status, exc.reason), exc.status)
    except Exception:
        log.exception("http_request_failed", path=request.path)
        return _json(ErrorBody(detail="internal error (logged on the server)", code="internal"), 500)
