"""One client connection: read frames, admit them, run them, write replies and events.

Tasks per connection: one reader, one writer (for frames that had to wait, fed by a bounded
queue), one task per request in flight and one per subscription. A frame is written to the socket
at once when nothing is queued ahead of it and the socket keeps up; otherwise it joins the queue,
so frames always leave in the order they were sent.

Subscriptions: the replay from the journal is written at the pace the client reads; live events
are written by the owner's fan-out straight to the socket (``gateway.members``), never waiting:
when this connection's queue is full the subscription stops with ``resync_required`` (resume with
``after_seq = from_seq``) — writers and other subscribers never wait for a slow reader.

Stopping (client gone, or server draining): reading stops, subscriptions end, requests in
flight run to completion within the grace period — an accepted add is never dropped — and
the socket closes (1001 when the server is going away).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import msgspec
import structlog
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from gateway import protocol as p
from gateway.auth import Grant, verify_token
from gateway.dispatch import owner_of
from gateway.event_frames import frame_head
from gateway.host import Host
from gateway.limits import Admission
from gateway.members import Member
from runtime.errors import BackendUnavailable, InvalidRequest, MemstreamError, Overloaded, Unauthenticated

log = structlog.get_logger("memstream.gateway")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
OVERLOADED_RETRY_AFTER_S = 0.5  # the hint sent with an ``overloaded`` answer from the backend (a full mailbox)


class _Subscription:
    def __init__(self, frame: p.Subscribe, owner: str | None, member: Member):
        self.frame = frame
        self.owner = owner
        self.member = member
        self.scope = anyio.CancelScope()


class Connection:
    def __init__(self, ws: ServerConnection, gateway: Host):
        self.ws = ws
        self.gateway = gateway
        self.settings = gateway.config.gateway
        self.codec = p.Codec(binary=ws.subprotocol == p.SUBPROTOCOL_MSGPACK)
        self.grant: Grant | None = None
        self.admission = Admission(rate=self.settings.rate_per_s, burst=self.settings.rate_burst,
                                   max_in_flight=self.settings.max_in_flight)
        self.subscriptions: dict[Any, _Subscription] = {}
        self._out_send, self._out_receive = anyio.create_memory_object_stream[bytes](self.settings.outbound_queue)
        self._text = not self.codec.binary
        self._sending = True  # False once the writer is told to finish: nothing is written after that
        self._reading = anyio.CancelScope()
        self._work_scope = anyio.CancelScope()
        self._work: anyio.abc.TaskGroup | None = None
        self.close_code = 1000
        self.close_reason = ""
        self.peer = str(ws.remote_address[0]) if ws.remote_address else "?"

    # ---- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        auth_deadline = anyio.CancelScope()
        async with anyio.create_task_group() as io:
            io.start_soon(self._write_loop)
            io.start_soon(self._close_unless_authenticated, auth_deadline)
            await self.send(p.Welcome(protocol=p.PROTOCOL_VERSION, server="memstream", encoding=self.codec.encoding,
                                      max_frame_bytes=self.settings.max_frame_bytes))
            with self._work_scope:
                async with anyio.create_task_group() as work:
                    self._work = work
                    with self._reading:
                        await self._read_loop()
                    for subscription in list(self.subscriptions.values()):
                        subscription.scope.cancel()
                    # requests in flight finish (adds are never dropped), within the grace period
                    self._work_scope.deadline = anyio.current_time() + self.settings.shutdown_grace_s
            auth_deadline.cancel()
            self._sending = False
            self._out_send.close()  # the writer flushes what is queued, then stops
        await self.ws.close(self.close_code, self.close_reason)

    async def _close_unless_authenticated(self, scope: anyio.CancelScope) -> None:
        """A connection that never authenticates would hold a slot (and ``max_connections``)
        for as long as its client likes: it gets ``auth_timeout_s``, then 1008."""
        with scope:
            await anyio.sleep(self.settings.auth_timeout_s)
            if self.grant is None:
                self.gateway.metrics.rejected.labels("unauthenticated").inc()
                log.info("auth_timeout", peer=self.peer, seconds=self.settings.auth_timeout_s)
                self.drain(CLOSE_POLICY_VIOLATION, f"no auth frame within {self.settings.auth_timeout_s:g} s")

    def drain(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        """Stop reading new requests; finish the ones in flight; then close."""
        self.close_code, self.close_reason = code, reason
        self._reading.cancel()

    async def send(self, frame: Any) -> None:
        await self.send_bytes(self.codec.encode(frame))

    async def send_bytes(self, data: bytes) -> None:
        """Write an encoded frame; waits while the queue is full (bounded)."""
        if self._write_now(data):
            return
        try:
            await self._out_send.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client is gone; the work itself is done or durable

    def send_now(self, data: bytes) -> bool:
        """Write or queue an encoded frame without waiting; False when the queue is full."""
        if self._write_now(data):
            return True
        try:
            self._out_send.send_nowait(data)
        except anyio.WouldBlock:
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client is gone
        return True

    def _write_now(self, data: bytes) -> bool:
        """Writes ``data`` to the socket synchronously when that keeps the order (nothing queued
        ahead: the writer writes what it dequeues before it next yields) and the socket keeps up
        (its buffer is under websockets' write limit); saves two task switches per frame."""
        if self._out_receive.statistics().current_buffer_used or not self._sending:
            return False
        transport = self.ws.transport
        if transport is None or transport.get_write_buffer_size() > self.ws.write_limit_high:
            return False
        broadcast((self.ws,), data, text=self._text)
        return True

    def outbound_depth(self) -> int:
        return self._out_receive.statistics().current_buffer_used

    async def _write_loop(self) -> None:
        async with self._out_receive:
            try:
                async for data in self._out_receive:
                    await self.ws.send(data, text=self._text)
            except ConnectionClosed:
                self._reading.cancel()

    async def _read_loop(self) -> None:
        metrics = self.gateway.metrics
        try:
            async for message in self.ws:
                try:
                    frame = self.codec.decode(message)
                except p.FrameError as exc:
                    metrics.rejected.labels(exc.code).inc()
                    await self.send(p.Error(code=exc.code, message=str(exc), id=exc.frame_id))
                    continue
                await self._admit(frame)
                if self.admission.should_close:
                    self.drain(CLOSE_TRY_AGAIN_LATER, "too many requests refused; back off and reconnect")
                    return
        except ConnectionClosed:
            return

    # ---- admission -----------------------------------------------------------------------
    async def _admit(self, frame: Any) -> None:
        metrics = self.gateway.metrics
        kind = type(frame).__struct_config__.tag
        if isinstance(frame, p.Ping):
            await self.send(p.Pong(id=frame.id, ts=self.gateway.clock()))
            return
        if isinstance(frame, p.Auth):
            await self._authenticate(frame)
            return
        now = self.gateway.clock()
        if self.grant is None or (self.grant.expires_at is not None and self.grant.expires_at <= now):
            metrics.rejected.labels("unauthenticated").inc()
            why = "send an auth frame first" if self.grant is None else "token expired; send auth with a fresh token"
            await self.send(p.Error(code=Unauthenticated.code, message=why, id=frame.id))
            return
        if isinstance(frame, p.Unsubscribe):
            await self._unsubscribe(frame)
            return
        admitted, retry_after, reason = self.admission.admit()
        if not admitted:
            metrics.rejected.labels("overloaded").inc()
            await self.send(p.Error(code=Overloaded.code, message=reason, id=frame.id, retry_after_s=retry_after))
            return
        assert self._work is not None
        if isinstance(frame, p.Subscribe):
            self.admission.done()  # a subscription is not a request in flight
            await self._start_subscription(frame)
            return
        self._work.start_soon(self._serve, frame, kind)

    async def _authenticate(self, frame: p.Auth) -> None:
        try:
            grant = verify_token(self.gateway.secret, frame.token, now=self.gateway.clock())
            if self.grant is not None and grant.tenant != self.grant.tenant:
                raise Unauthenticated("a connection cannot change tenant; open a new connection")
        except Unauthenticated as exc:
            self.gateway.metrics.rejected.labels("unauthenticated").inc()
            log.info("auth_refused", peer=self.peer, reason=str(exc))
            await self.send(p.Error(code=exc.code, message=str(exc), id=frame.id))
            return
        self.grant = grant
        log.info("auth", peer=self.peer, tenant=grant.tenant, subject=grant.subject)
        await self.send(p.Result(id=frame.id, data={"tenant": grant.tenant, "owners": sorted(grant.owners),
                                                    "rights": sorted(grant.rights),
                                                    "expires_at": grant.expires_at}))

    # ---- requests ------------------------------------------------------------------------
    async def _serve(self, frame: Any, kind: str) -> None:
        metrics = self.gateway.metrics
        started = time.perf_counter()
        outcome = "ok"
        try:
            if isinstance(frame, p.Add):
                if frame.request_id is None:
                    frame = msgspec.structs.replace(frame, request_id=str(uuid.uuid4()))
                await self.send(p.Accepted(id=frame.id, request_id=frame.request_id))
            assert self.grant is not None
            with anyio.fail_after(self.settings.request_timeout_s):
                data = await self.gateway.dispatcher.run(self.grant, frame)
            await self.send(p.Result(id=frame.id, data=data))
        except MemstreamError as exc:
            outcome = exc.code
            committed = exc.committed_seq if isinstance(exc, BackendUnavailable) else None
            retry = OVERLOADED_RETRY_AFTER_S if isinstance(exc, Overloaded) else None  # e.g. a full mailbox
            await self.send(p.Error(code=exc.code, message=str(exc), id=frame.id, committed_seq=committed,
                                    retry_after_s=retry))
        except TimeoutError:
            outcome = "timeout"
            await self.send(p.Error(code="timeout", id=frame.id,
                                    message=f"no answer within {self.settings.request_timeout_s}s"))
        except Exception:
            outcome = "internal"
            log.exception("request_failed", type=kind, id=frame.id)
            await self.send(p.Error(code="internal", message="internal error (logged on the server)", id=frame.id))
        finally:
            self.admission.done()
            elapsed = time.perf_counter() - started
            metrics.requests.labels(kind, outcome).inc()
            metrics.latency.labels(kind).observe(elapsed)
            log.info("request", type=kind, id=frame.id, outcome=outcome, ms=round(elapsed * 1000, 2),
                     tenant=self.grant.tenant if self.grant else None)

    # ---- subscriptions -------------------------------------------------------------------
    async def _start_subscription(self, frame: p.Subscribe) -> None:
        assert self.grant is not None and self._work is not None
        try:
            if frame.id in self.subscriptions:
                raise InvalidRequest(f"subscription {frame.id!r} already exists on this connection")
            if len(self.subscriptions) >= self.settings.max_subscriptions:
                raise Overloaded(f"at most {self.settings.max_subscriptions} subscriptions per connection")
            if frame.tenant_wide:
                self.grant.require("admin")
                owner = None
            else:
                owner = owner_of(frame)
                self.grant.require("subscribe", owner)
            head = None if owner is None else await self.gateway.dispatcher.memory.head(
                **frame.scope_ids(), tenant=self.grant.tenant)
        except MemstreamError as exc:
            self.gateway.metrics.requests.labels("subscribe", exc.code).inc()
            await self.send(p.Error(code=exc.code, message=str(exc), id=frame.id))
            return
        member = Member(self, frame_head(frame.id, binary=self.codec.binary), binary=self.codec.binary,
                        after_seq=frame.after_seq, capacity=self.gateway.fanout.capacity, ordered=owner is not None,
                        on_write=self.gateway.metrics.events.inc)
        subscription = _Subscription(frame, owner, member)
        self.subscriptions[frame.id] = subscription
        self.gateway.metrics.requests.labels("subscribe", "ok").inc()
        await self.send(p.Result(id=frame.id, data={"subscription": frame.id, "owner": owner, "head": head,
                                                    "after_seq": frame.after_seq}))
        self._work.start_soon(self._run_subscription, subscription)

    async def _unsubscribe(self, frame: p.Unsubscribe) -> None:
        subscription = self.subscriptions.get(frame.subscription)
        if subscription is None:
            await self.send(p.Error(code="not_found", message=f"no subscription {frame.subscription!r}", id=frame.id))
            return
        subscription.scope.cancel()
        await self.send(p.Result(id=frame.id, data={"subscription": frame.subscription}))

    async def _run_subscription(self, subscription: _Subscription) -> None:
        """Joins the owner's fan-out, catches up from the journal, then only wakes when the
        member is cut off, sees a gap, or has been quiet for a heartbeat."""
        assert self.grant is not None
        metrics, frame, member = self.gateway.metrics, subscription.frame, subscription.member
        tenant, owner = self.grant.tenant, subscription.owner
        metrics.subscriptions.inc()
        failure: MemstreamError | None = None
        try:
            with subscription.scope:
                fanout = self.gateway.fanout
                scope_ids = None if owner is None else frame.scope_ids()
                async with fanout.membership(tenant, owner, scope_ids, member):
                    if owner is None:
                        member.live = True  # a tenant stream is live only: no replay
                    while not member.cut:
                        if not member.live:
                            await member.catch_up(lambda after: fanout.read(tenant, scope_ids, after))
                            continue
                        seen = member.delivered
                        with anyio.move_on_after(self.settings.heartbeat_s):
                            await member.changed.wait()
                        member.reset_wake()
                        if member.live and not member.cut and member.delivered == seen:
                            await self._heartbeat(subscription)
        except MemstreamError as exc:
            failure = exc
        finally:
            metrics.subscriptions.dec()
            self.subscriptions.pop(frame.id, None)
        if member.cut:
            metrics.resyncs.inc()
            log.info("subscriber_resync", peer=self.peer, subscription=frame.id, from_seq=member.last)
            await self.send(p.ResyncRequired(subscription=frame.id, from_seq=member.last if owner else 0,
                                             owner=owner))
        elif failure is not None:
            await self.send(p.Error(code=failure.code, message=str(failure), id=frame.id))

    async def _heartbeat(self, subscription: _Subscription) -> None:
        if subscription.owner is None:
            return
        assert self.grant is not None
        last = subscription.member.last
        head = self.gateway.fanout.head(self.grant.tenant, subscription.owner)
        head = last if head is None else max(head, last)
        await self.send(p.Heartbeat(subscription=subscription.frame.id, owner=subscription.owner, head=head))
