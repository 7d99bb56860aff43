"""Webhook deliveries: one more consumer of the journal, like a resuming subscriber.

Each (webhook, owner) lane reads the owner's events after its persisted cursor
(``read_events``), POSTs them one at a time, signed, and moves the cursor only on a 2xx
(``gateway.webhooks.policy``). That gives at-least-once delivery in per-owner order: a crash
between a 2xx and the cursor's write redelivers that one event, with the same ``seq``.

Lanes run only when there is something to send. Two things wake them: the tenant's live event
stream (``subscribe_tenant``: low latency) and a scan of every owner's head every ``poll_s``
(the safety net that makes the live stream's gaps harmless — a shard restart, a resync, this
process starting up). Owners of one webhook are delivered concurrently, at most
``concurrency`` POSTs at once; a slow or dead receiver holds back only its own lanes.

However many gateway processes serve (siblings on one port, gateways on several machines), one
delivers: the holder of a lease in the webhook store, renewed every few seconds; when it dies,
another takes over after ``lease_s``, from the persisted cursors.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import aiohttp
import anyio
import structlog

from gateway.webhooks import policy, signing
from gateway.webhooks.metrics import WebhookMetrics
from gateway.webhooks.payload import delivery_body, wanted
from gateway.webhooks.policy import Lane, RetryPolicy
from gateway.webhooks.store import WebhookRow
from runtime.config import WebhooksConfig
from runtime.errors import MemstreamError

log = structlog.get_logger("memstream.webhooks")
USER_AGENT = "memstream-webhooks/1"
_ERROR_CHARS = 300


def scope_ids(owner: str) -> dict[str, str]:
    """``user:alice`` → ``{"user_id": "alice"}`` (the owner-level scope)."""
    kind, _, ident = owner.partition(":")
    return {f"{kind}_id": ident}


def _epoch(iso_time: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(iso_time).timestamp()
    except ValueError:
        return None


class _Running:
    """A lane's task, and whether it was woken since it last looked for events."""

    def __init__(self) -> None:
        self.woken = True


class Deliveries:
    def __init__(self, memory: Any, store: Any, settings: WebhooksConfig, metrics: WebhookMetrics, *,
                 clock: Callable[[], float] = time.time, draw: Callable[[], float] | None = None):
        self.memory = memory
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.policy = RetryPolicy.from_config(settings)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._clock = clock
        self._draw = draw or random.Random().random  # its own generator: the global one stays untouched
        self._hooks: dict[str, WebhookRow] = {}
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._running: dict[tuple[str, str], _Running] = {}
        self._feeds: dict[str, anyio.CancelScope] = {}
        self._limit = anyio.Semaphore(settings.concurrency)
        self._tasks: anyio.abc.TaskGroup | None = None  # set while this process delivers
        self._session: aiohttp.ClientSession | None = None
        self.leading = anyio.Event()  # set once this process delivers (tests wait on it)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver while this process holds the store's lease (one gateway process delivers, however
        many serve); check the lease every ``poll_s``."""
        task_status.started()
        try:
            await self._lead()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                try:
                    await self.store.release(self.holder)
                except MemstreamError:
                    pass  # it expires on its own

    async def _lead(self) -> None:
        delivering: anyio.CancelScope | None = None
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    leader = await self.store.lease(self.holder, self._clock(), self.settings.lease_s)
                except MemstreamError as exc:
                    log.warning("webhook_lease_unavailable", error=str(exc))
                    leader = False
                if leader and delivering is None:
                    delivering = anyio.CancelScope()
                    tg.start_soon(self._deliver, delivering)
                elif not leader and delivering is not None:
                    log.warning("webhook_lease_lost", holder=self.holder)
                    delivering.cancel()
                    delivering = None
                await anyio.sleep(min(self.settings.poll_s, self.settings.lease_s / 3))

    async def _deliver(self, scope: anyio.CancelScope) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        with scope:
            try:
                async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}) as session, \
                        anyio.create_task_group() as tasks:
                    self._session, self._tasks = session, tasks
                    log.info("webhook_deliveries_started", holder=self.holder)
                    self.leading.set()
                    while True:
                        await self.reload()
                        await anyio.sleep(self.settings.poll_s)
            finally:
                self._session = self._tasks = None
                self._hooks, self._lanes, self._feeds = {}, {}, {}
                self.leading = anyio.Event()

    # ---- what to deliver ----
    async def reload(self) -> None:
        """Re-read the registrations (any gateway process may have changed them) and, for webhooks
        new or changed since the last look, their cursors; then scan. Only the delivering process
        does anything."""
        if self._tasks is None:
            return
        hooks = {hook.id: hook for hook in await self.store.webhooks() if hook.is_active}
        changed = {hook_id for hook_id, hook in hooks.items()
                   if hook_id not in self._hooks or self._hooks[hook_id].updated_at != hook.updated_at}
        self._lanes = {key: lane for key, lane in self._lanes.items() if key[0] in hooks}
        for hook_id in changed:  # a running lane's cursor is this process's own, newer than any read
            for lane in await self.store.lanes(hook_id):
                if (hook_id, lane.owner) not in self._running:
                    self._lanes[(hook_id, lane.owner)] = lane
        self._hooks = hooks
        tenants = {hook.tenant for hook in hooks.values()}
        for tenant in set(self._feeds) - tenants:
            self._feeds.pop(tenant).cancel()
        for tenant in tenants - set(self._feeds):
            self._feeds[tenant] = anyio.CancelScope()
            self._tasks.start_soon(self._follow, tenant, self._feeds[tenant])
        await self.scan()

    def lane(self, hook_id: str, owner: str) -> Lane:
        return self._lanes.get((hook_id, owner)) or Lane(webhook_id=hook_id, owner=owner)

    def wake(self, hook_id: str, owner: str) -> None:
        """Make sure the lane looks for events now (starting its task if it has none)."""
        key = (hook_id, owner)
        running = self._running.get(key)
        if running is not None:
            running.woken = True
            return
        if self.lane(hook_id, owner).dead or self._tasks is None:
            return
        self._running[key] = _Running()
        self._tasks.start_soon(self._deliver_lane, hook_id, owner)

    async def scan(self) -> None:
        """Every owner's head against every lane: wake the lanes behind, and update the lag gauges."""
        by_tenant: dict[str, list[WebhookRow]] = {}
        for hook in self._hooks.values():
            by_tenant.setdefault(hook.tenant, []).append(hook)
        for tenant, hooks in by_tenant.items():
            try:
                owners = await self.memory.owners(tenant=tenant)
            except MemstreamError as exc:
                log.warning("webhook_scan_failed", tenant=tenant, error=str(exc))
                continue
            for hook in hooks:
                behind = dead = 0
                for row in owners:
                    lane = self.lane(hook.id, row["owner"])
                    behind += max(0, row["head"] - lane.delivered)
                    dead += lane.dead
                    if row["head"] > lane.delivered:
                        self.wake(hook.id, row["owner"])
                self.metrics.lag_events.labels(hook.id).set(behind)
                self.metrics.dead_lanes.labels(hook.id).set(dead)

    async def _follow(self, tenant: str, scope: anyio.CancelScope) -> None:
        """The tenant's live events, as wake-ups. When the stream ends or fails, a scan covers what
        it may have missed, and it is followed again."""
        with scope:
            while True:
                try:
                    async with aclosing(self.memory.subscribe_tenant(tenant=tenant)) as events:
                        async for event in events:
                            for hook in [h for h in self._hooks.values() if h.tenant == tenant]:
                                self.wake(hook.id, event.owner)
                except MemstreamError as exc:
                    log.info("webhook_feed_restarting", tenant=tenant, reason=str(exc))
                await self.scan()
                await anyio.sleep(self.settings.poll_s)

    # ---- one lane ----
    async def _deliver_lane(self, hook_id: str, owner: str) -> None:
        key = (hook_id, owner)
        running = self._running[key]
        troubles = 0
        try:
            while True:
                hook = self._hooks.get(hook_id)
                lane = self.lane(hook_id, owner)
                if hook is None or lane.dead:
                    return
                wait = policy.wait_s(lane, self._clock())
                if wait > 0:
                    await anyio.sleep(wait)
                    continue
                running.woken = False
                try:
                    events = await self.memory.read_events(**scope_ids(owner), after_seq=lane.delivered,
                                                           limit=self.settings.batch, tenant=hook.tenant)
                    if not events and not running.woken:
                        return
                    await self._send(hook, lane, events)
                    troubles = 0
                except MemstreamError as exc:  # the journal's or the store's side (a shard restarting): not
                    troubles += 1              # the receiver's fault, so no attempt is counted against it
                    log.warning("webhook_lane_stalled", webhook=hook_id, owner=owner, error=str(exc))
                    await anyio.sleep(policy.backoff_s(self.policy, troubles, self._draw()))
        except Exception:  # a bug: this lane stops (logged); the next scan starts it again
            log.exception("webhook_lane_failed", webhook=hook_id, owner=owner)
        finally:
            del self._running[key]

    async def _send(self, hook: WebhookRow, lane: Lane, events: list[Any]) -> None:
        """Deliver ``events`` in order until one fails; persist the cursor after each delivery."""
        start = lane
        for event in events:
            if self._hooks.get(hook.id) is not hook:  # changed or removed meanwhile: start over with the new one
                break
            if not wanted(event, hook.event_types):
                lane = policy.advanced(lane, event.seq)
                continue
            error = await self._post(hook, delivery_body(hook.id, event))
            if error is None:
                lane = policy.advanced(lane, event.seq)
                self.metrics.deliveries.labels(hook.id, "ok").inc()
                committed = _epoch(event.created_at)
                if committed is not None:
                    self.metrics.lag_seconds.labels(hook.id).observe(max(0.0, self._clock() - committed))
                await self._save(lane)
                continue
            lane = policy.failed(lane, error, now=self._clock(), policy=self.policy, draw=self._draw())
            outcome = "dead_lettered" if lane.dead else "failed"
            self.metrics.deliveries.labels(hook.id, outcome).inc()
            log.warning("webhook_delivery_failed", webhook=hook.id, owner=lane.owner, seq=event.seq,
                        attempts=lane.attempts, dead=lane.dead, error=error)
            break
        if lane != start:
            await self._save(lane)

    async def _save(self, lane: Lane) -> None:
        self._lanes[(lane.webhook_id, lane.owner)] = lane
        await self.store.save_lane(lane)

    async def _post(self, hook: WebhookRow, body: bytes) -> str | None:
        """None on a 2xx; else what went wrong (a status, or the connection's error)."""
        assert self._session is not None
        headers = {"Content-Type": "application/json", "X-Memstream-Webhook-Id": hook.id,
                   signing.HEADER: signing.header_value(hook.secret, int(self._clock()), body)}
        async with self._limit:
            started = time.perf_counter()
            try:
                async with self._session.post(hook.url, data=body, headers=headers, allow_redirects=False) as reply:
                    await reply.read()
                    status = reply.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
            finally:
                self.metrics.post_seconds.labels(hook.id).observe(time.perf_counter() - started)
        return None if 200 <= status < 300 else f"HTTP {status}"
