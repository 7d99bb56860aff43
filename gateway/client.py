"""``MemoryClient``: the memory API over the gateway, for apps in another process or machine.

The same methods as ``Memory``/``AsyncMemory``. The connection is kept alive: when it
drops, the client reconnects with exponential backoff, authenticates again, re-sends the
requests that had no answer yet (every write carries a request id, so the journal applies
it once however often it is sent) and resumes each subscription after the last seq it
delivered — so a subscriber sees every event once, in order, across disconnects.

Dialling is one step to the client, from the TCP connect to the answer to its ``auth`` frame,
and any failure on the way is transient: refused, timed out, turned away by a full or
draining server (503), or cut before the auth answer (a server dropping connections cuts
handshakes too). Each such failure costs one try of the budget — ``connect_attempts`` for
the first connection (``open``), ``max_reconnect_attempts`` after a drop (None: until
closed) — and the next try waits the backoff. Only a URL that is not a WebSocket URL
(``InvalidRequest``) and a refused token (``Unauthenticated``) end the dialling at once.

Over 400 lines on purpose: the dialling, the table of unanswered requests and the subscriptions'
resume points are the state of one connection that every API method goes through, and each API
method is a few lines that build one frame; split apart, each half would reach into the other.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import msgspec
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from gateway import protocol as p
from gateway.keepalive import ClientSocket
from runtime.errors import (
    BackendUnavailable,
    Forbidden,
    InvalidRequest,
    LLMOutputError,
    MemstreamError,
    NotFound,
    Overloaded,
    Unauthenticated,
)
from runtime.events import ResyncRequired
from runtime.model import MemoryEvent
from runtime.sync import BlockingFacade, blocking, blocking_iterator

log = structlog.get_logger("memstream.client")

_ERRORS: dict[str, type[MemstreamError]] = {cls.code: cls for cls in (
    InvalidRequest, NotFound, LLMOutputError, Overloaded, Forbidden, Unauthenticated, ResyncRequired)}


def error_from_frame(frame: p.Error) -> MemstreamError:
    """The typed error a server error frame stands for."""
    if frame.code == BackendUnavailable.code:
        return BackendUnavailable(frame.message, backend="gateway", committed_seq=frame.committed_seq)
    cls = _ERRORS.get(frame.code)
    if cls is None or cls is ResyncRequired:
        error = MemstreamError(frame.message)
        error.code = frame.code
        return error
    return cls(frame.message)


class _Pending:
    """One request waiting for its answer; ``retry`` wakes it to send again after a reconnect."""

    def __init__(self, frame: Any):
        self.frame = frame
        self.answered = anyio.Event()
        self.answer: Any = None
        self.retry = False

    def resolve(self, answer: Any) -> None:
        self.answer = answer
        self.answered.set()

    def wake_for_retry(self) -> None:
        self.retry = True
        self.answered.set()


class _Subscription:
    def __init__(self, scope: dict[str, str | None], after_seq: int, capacity: int):
        self.scope = scope
        self.last = after_seq
        self.wire_id: Any = None
        self.send, self.receive = anyio.create_memory_object_stream[Any](capacity)
        self.lagging = False


class MemoryClient:
    def __init__(self, url: str, token: str, *, binary: bool = False, request_timeout_s: float = 600.0,
                 connect_timeout_s: float = 10.0, backoff_initial_s: float = 0.1, backoff_max_s: float = 5.0,
                 connect_attempts: int = 5, max_reconnect_attempts: int | None = None,
                 subscription_buffer: int = 4096):
        if connect_attempts < 1:
            raise InvalidRequest("connect_attempts must be >= 1")
        self.url = url
        self.token = token
        self.binary = binary
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_attempts = connect_attempts
        self.max_reconnect_attempts = max_reconnect_attempts
        self._jitter = random.Random()  # its own generator: the application's global random sequence stays its own
        self.subscription_buffer = subscription_buffer
        self.reconnects = 0
        self._ids = itertools.count(1)
        self._codec_encoder = msgspec.msgpack.Encoder() if binary else msgspec.json.Encoder()
        self._decoder: Any = (msgspec.msgpack.Decoder(p.ServerFrame) if binary
                              else msgspec.json.Decoder(p.ServerFrame))
        self._pending: dict[Any, _Pending] = {}
        self._subscriptions: dict[Any, _Subscription] = {}  # by wire id
        self._ws: ClientConnection | None = None
        self._connected = anyio.Event()
        self._failure: MemstreamError | None = None
        self._stack: AsyncExitStack | None = None
        self._closing = False
        self.grant: dict[str, Any] = {}

    # ---- lifecycle -----------------------------------------------------------------------
    async def open(self) -> MemoryClient:
        """Connect and authenticate within ``connect_attempts`` tries; a bad URL or a refused token
        fails at once, an unreachable gateway with ``BackendUnavailable`` once the tries are spent."""
        ws = await self._dial_within(self.connect_attempts, wait_first=False)
        self._ws = ws  # close() closes it even if called before _keep_connected has started
        self._stack = AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._tg.start_soon(self._keep_connected, ws)
        return self

    async def close(self) -> None:
        """Close the connection; call from the task that opened the client (``async with``)."""
        self._closing = True
        if self._ws is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):  # even when the caller is cancelled
                await self._ws.close()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self._tg.cancel_scope.cancel()
            await stack.aclose()

    async def __aenter__(self) -> MemoryClient:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- connection ----------------------------------------------------------------------
    async def _dial_within(self, budget: int | None, *, wait_first: bool) -> ClientConnection:
        """``_dial`` until it succeeds, at most ``budget`` tries (None: no limit), waiting the backoff
        before each try but the first (before the first too with ``wait_first``: after a drop, so that
        clients cut together do not all dial back at the same instant). Only ``BackendUnavailable``
        is retried; it is raised, naming the tries, once the budget is spent."""
        backoff, attempt, failure = self.backoff_initial_s, 0, None
        while budget is None or attempt < budget:
            attempt += 1
            if wait_first or attempt > 1:
                await anyio.sleep(backoff * (0.5 + self._jitter.random()))
                backoff = min(backoff * 2, self.backoff_max_s)
            try:
                return await self._dial()
            except BackendUnavailable as exc:
                failure = exc
                log.info("dial_failed", url=self.url, attempt=attempt, error=str(exc))
        raise BackendUnavailable(f"gateway {self.url} unreachable after {attempt} attempts: {failure}",
                                 backend="gateway") from failure

    async def _dial(self) -> ClientConnection:
        """Connect, read the welcome, authenticate: one try. Raises ``Unauthenticated`` for a bad token,
        ``InvalidRequest`` for a bad URL and ``BackendUnavailable`` for every transient failure."""
        subprotocols = [p.SUBPROTOCOL_MSGPACK] if self.binary else [p.SUBPROTOCOL_JSON]
        try:
            ws = await connect(self.url, subprotocols=subprotocols, open_timeout=self.connect_timeout_s,
                               compression=None, max_size=None, create_connection=ClientSocket)
        except InvalidURI as exc:
            raise InvalidRequest(f"not a WebSocket URL: {self.url}") from exc
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            raise BackendUnavailable(f"cannot reach the gateway at {self.url}: {exc!r}", backend="gateway") from exc
        try:
            with anyio.fail_after(self.connect_timeout_s):
                welcome = self._decode(await ws.recv())
                if not isinstance(welcome, p.Welcome):
                    raise BackendUnavailable("the server did not greet with a welcome frame", backend="gateway")
                auth_id = f"auth-{next(self._ids)}"
                await ws.send(self._encode(p.Auth(id=auth_id, token=self.token)), text=not self.binary)
                while True:
                    frame = self._decode(await ws.recv())
                    if getattr(frame, "id", None) != auth_id:
                        continue
                    if isinstance(frame, p.Error):
                        raise error_from_frame(frame)
                    self.grant = frame.data
                    return ws
        except (TimeoutError, ConnectionClosed, msgspec.DecodeError, msgspec.ValidationError) as exc:
            await ws.close()
            raise BackendUnavailable(f"the gateway at {self.url} did not complete the handshake: {exc!r}",
                                     backend="gateway") from exc
        except BaseException:
            await ws.close()
            raise

    async def _keep_connected(self, ws: ClientConnection) -> None:
        """Serve one connection until it drops, then dial again within ``max_reconnect_attempts``;
        a spent budget or a refused token fails every pending request and subscription."""
        while True:
            await self._run_connection(ws)
            if self._closing:
                return
            try:
                ws = await self._dial_within(self.max_reconnect_attempts, wait_first=True)
            except MemstreamError as exc:
                self._fail(exc)
                return
            self.reconnects += 1

    async def _run_connection(self, ws: ClientConnection) -> None:
        """Resubscribe, then read until the connection drops; requests waiting for an answer are
        woken to re-send on the next connection."""
        self._ws = ws
        self._connected.set()
        try:
            for subscription in list(self._subscriptions.values()):
                await self._send_subscribe(subscription)
            await self._read(ws)
        except ConnectionClosed:
            pass
        finally:
            self._connected = anyio.Event()
            self._ws = None
            for pending in list(self._pending.values()):
                pending.wake_for_retry()

    def _fail(self, error: MemstreamError) -> None:
        self._failure = error
        self._connected.set()
        for pending in list(self._pending.values()):
            pending.resolve(error)
        for subscription in list(self._subscriptions.values()):
            try:
                subscription.send.send_nowait(error)
            except anyio.WouldBlock:
                pass

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = self._decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("undecodable_server_frame")
                continue
            if isinstance(frame, (p.Event, p.ResyncRequired, p.Heartbeat)):
                await self._route_subscription(frame)
                continue
            frame_id = getattr(frame, "id", None)
            subscription = self._subscriptions.get(frame_id)
            if subscription is not None:  # the answer to a (re)subscribe
                if isinstance(frame, p.Error):
                    subscription.send.send_nowait(error_from_frame(frame))
                continue
            pending = self._pending.get(frame_id)
            if pending is not None and isinstance(frame, (p.Result, p.Error, p.Pong)):
                pending.resolve(frame)

    async def _route_subscription(self, frame: p.Event | p.ResyncRequired | p.Heartbeat) -> None:
        subscription = self._subscriptions.get(frame.subscription)
        if subscription is None or isinstance(frame, p.Heartbeat):
            return
        if isinstance(frame, p.ResyncRequired):  # the server cut us off: resume where we are
            await self._send_subscribe(subscription)
            return
        if subscription.lagging:
            return
        try:
            subscription.send.send_nowait(frame)
        except anyio.WouldBlock:  # the consumer is behind: drop, and resume from its last seq later
            subscription.lagging = True
            await self._send(p.Unsubscribe(id=f"unsub-{next(self._ids)}", subscription=frame.subscription))

    async def _send_subscribe(self, subscription: _Subscription) -> None:
        self._subscriptions.pop(subscription.wire_id, None)
        subscription.wire_id = f"sub-{next(self._ids)}"
        subscription.lagging = False
        self._subscriptions[subscription.wire_id] = subscription
        await self._send(p.Subscribe(id=subscription.wire_id, after_seq=subscription.last, **subscription.scope))

    async def _send(self, frame: Any) -> None:
        ws = self._ws
        if ws is not None:
            try:
                await ws.send(self._encode(frame), text=not self.binary)
            except ConnectionClosed:
                pass  # the reconnect loop re-sends what matters

    def _encode(self, frame: Any) -> bytes:
        return self._codec_encoder.encode(frame)

    def _decode(self, raw: str | bytes) -> Any:
        return self._decoder.decode(raw)

    # ---- requests ------------------------------------------------------------------------
    async def _call(self, frame: Any) -> Any:
        pending = _Pending(frame)
        self._pending[frame.id] = pending
        try:
            with anyio.fail_after(self.request_timeout_s):
                while True:
                    await self._connected.wait()  # also set by _fail: check the failure after it, not before
                    if self._failure is not None:
                        raise self._failure
                    pending.retry = False
                    pending.answered = anyio.Event()
                    await self._send(frame)
                    await pending.answered.wait()
                    if pending.retry:
                        continue
                    answer = pending.answer
                    if isinstance(answer, MemstreamError):
                        raise answer
                    if isinstance(answer, p.Error):
                        raise error_from_frame(answer)
                    return answer.ts if isinstance(answer, p.Pong) else answer.data
        except TimeoutError:
            raise BackendUnavailable(f"no answer from the gateway within {self.request_timeout_s}s",
                                     backend="gateway") from None
        finally:
            del self._pending[frame.id]

    def _id(self) -> str:
        return f"r{next(self._ids)}"

    async def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
                  run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
                  request_id: str | None = None) -> dict[str, Any]:
        if not isinstance(messages, str):
            messages = msgspec.convert(messages if isinstance(messages, list) else [messages], list[p.ChatMessage])
        return await self._call(p.Add(id=self._id(), messages=messages, user_id=user_id, agent_id=agent_id,
                                      run_id=run_id, metadata=metadata, infer=infer,
                                      request_id=request_id or str(uuid.uuid4())))

    async def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
                     run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int | None = None,
                     threshold: float | None = None, fallback: bool = False,
                     mode: str | None = None) -> dict[str, Any]:
        """``mode``: ``dense``, ``sparse`` or ``hybrid``; the server's configured one when omitted."""
        return await self._call(p.Search(id=self._id(), query=query, user_id=user_id, agent_id=agent_id,
                                         run_id=run_id, filters=filters, limit=limit, threshold=threshold,
                                         fallback=fallback, mode=mode))

    async def get(self, memory_id: str) -> dict[str, Any]:
        return await self._call(p.Get(id=self._id(), memory_id=memory_id))

    async def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                      filters: dict[str, Any] | None = None, limit: int = 100, offset: int = 0,
                      as_of: int | float | str | None = None) -> dict[str, Any]:
        return await self._call(p.GetAll(id=self._id(), user_id=user_id, agent_id=agent_id, run_id=run_id,
                                         filters=filters, limit=limit, offset=offset, as_of=as_of))

    async def update(self, memory_id: str, data: str, *, metadata: dict[str, Any] | None = None,
                     request_id: str | None = None) -> dict[str, Any]:
        return await self._call(p.Update(id=self._id(), memory_id=memory_id, data=data, metadata=metadata,
                                         request_id=request_id or str(uuid.uuid4())))

    async def delete(self, memory_id: str, *, request_id: str | None = None) -> dict[str, Any]:
        return await self._call(p.Delete(id=self._id(), memory_id=memory_id,
                                         request_id=request_id or str(uuid.uuid4())))

    async def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None) -> dict[str, Any]:
        return await self._call(p.DeleteAll(id=self._id(), user_id=user_id, agent_id=agent_id, run_id=run_id))

    async def history(self, memory_id: str | None = None, *, user_id: str | None = None,
                      agent_id: str | None = None, run_id: str | None = None, since_seq: int = 0,
                      limit: int = 1000) -> list[dict[str, Any]]:
        return await self._call(p.History(id=self._id(), memory_id=memory_id, user_id=user_id, agent_id=agent_id,
                                          run_id=run_id, since_seq=since_seq, limit=limit))

    async def head(self, *, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> int:
        answer = await self._call(p.Head(id=self._id(), user_id=user_id, agent_id=agent_id, run_id=run_id))
        return int(answer["head"])

    async def reset(self) -> dict[str, Any]:
        """Delete every memory of the token's tenant (needs an admin token)."""
        return await self._call(p.Reset(id=self._id()))

    async def ping(self) -> float:
        """The server's clock (a round trip that touches no backend)."""
        return await self._call(p.Ping(id=self._id()))

    async def subscribe(self, *, user_id: str | None = None, agent_id: str | None = None,
                        run_id: str | None = None, after_seq: int = 0) -> AsyncIterator[MemoryEvent]:
        """Every change of the owner after ``after_seq``, in order, then live; survives
        reconnects and server-side resyncs (events are deduplicated by seq)."""
        scope = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        subscription = _Subscription(scope, after_seq, self.subscription_buffer)
        try:
            await self._connected.wait()
            if self._failure is not None:
                raise self._failure
            await self._send_subscribe(subscription)
            async for item in subscription.receive:
                if isinstance(item, BaseException):
                    raise item
                if item.seq > subscription.last:
                    subscription.last = item.seq
                    yield item.event
                if subscription.lagging and subscription.receive.statistics().current_buffer_used == 0:
                    await self._send_subscribe(subscription)
        finally:
            subscription.send.close()
            subscription.receive.close()
            self._subscriptions.pop(subscription.wire_id, None)
            if subscription.wire_id is not None:
                with anyio.CancelScope(shield=True):
                    await self._send(p.Unsubscribe(id=f"unsub-{next(self._ids)}",
                                                   subscription=subscription.wire_id))


class SyncMemoryClient(BlockingFacade):
    """The blocking ``MemoryClient``: ``SyncMemoryClient(url, token).search("tea", user_id="alice")``."""

    def __init__(self, url: str, token: str, **options: Any):
        super().__init__(lambda: MemoryClient(url, token, **options))

    add = blocking(MemoryClient.add)
    search = blocking(MemoryClient.search)
    get = blocking(MemoryClient.get)
    get_all = blocking(MemoryClient.get_all)
    update = blocking(MemoryClient.update)
    delete = blocking(MemoryClient.delete)
    delete_all = blocking(MemoryClient.delete_all)
    history = blocking(MemoryClient.history)
    head = blocking(MemoryClient.head)
    reset = blocking(MemoryClient.reset)
    ping = blocking(MemoryClient.ping)
    subscribe = blocking_iterator(MemoryClient.subscribe)
