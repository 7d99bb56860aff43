"""Webhooks of a tenant: what an admin registers, changes, removes, inspects and replays, and the
deliveries that follow from it. The REST routes (``gateway.webhooks.routes``) call this."""

from __future__ import annotations

import secrets
from typing import Any

import anyio
from prometheus_client import CollectorRegistry

from gateway.rest.bodies import WebhookCreate, WebhookUpdate
from gateway.rest.errors import FieldError
from gateway.webhooks import signing
from gateway.webhooks.delivery import Deliveries
from gateway.webhooks.metrics import WebhookMetrics
from gateway.webhooks.payload import checked_event_types
from gateway.webhooks.policy import Lane
from gateway.webhooks.store import WebhookRow, open_store
from runtime.clock import Clock, SystemClock, iso
from runtime.config import Config
from runtime.errors import NotFound


class WebhookAdmin:
    def __init__(self, config: Config, memory: Any, registry: CollectorRegistry, *, clock: Clock | None = None):
        self.memory = memory
        self.store = open_store(config)
        self.metrics = WebhookMetrics(registry)
        self.deliveries = Deliveries(memory, self.store, config.webhooks, self.metrics)
        self._clock = clock or SystemClock()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self.store.open()
        try:
            await self.deliveries.run(task_status=task_status)
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.close()

    async def create(self, tenant: str, body: WebhookCreate) -> WebhookRow:
        """A new webhook. It delivers what is committed from now on (``start: beginning``: every
        event the journal holds): each existing owner's cursor starts at its current head."""
        now = iso(self._clock.now())
        hook = WebhookRow(id=f"wh_{secrets.token_hex(8)}", tenant=tenant, name=body.name, url=body.url,
                          secret=body.secret or signing.new_secret(), event_types=checked_event_types(body.event_types),
                          created_at=now, updated_at=now)
        lanes = []
        if body.start == "now":
            lanes = [Lane(webhook_id=hook.id, owner=row["owner"], delivered=row["head"])
                     for row in await self.memory.owners(tenant=tenant)]
        await self.store.create(hook, lanes)
        await self.deliveries.reload()
        return hook

    async def list(self, tenant: str) -> list[WebhookRow]:
        return await self.store.webhooks(tenant)

    async def get(self, tenant: str, hook_id: str) -> WebhookRow:
        hook = await self.store.webhook(tenant, hook_id)
        if hook is None:
            raise NotFound(f"no webhook {hook_id!r} in this project")
        return hook

    async def update(self, tenant: str, hook_id: str, body: WebhookUpdate) -> WebhookRow:
        hook = await self.get(tenant, hook_id)
        changes: dict[str, Any] = {k: v for k, v in (("name", body.name), ("url", body.url),
                                                     ("is_active", body.is_active)) if v is not None}
        if body.event_types is not None:
            changes["event_types"] = checked_event_types(body.event_types)
        if not changes:
            raise FieldError("body", "send at least one of name, url, event_types, is_active")
        updated = WebhookRow(**{**_fields(hook), **changes, "updated_at": iso(self._clock.now())})
        await self.store.update(updated)
        await self.deliveries.reload()
        return updated

    async def delete(self, tenant: str, hook_id: str) -> None:
        if not await self.store.delete(tenant, hook_id):
            raise NotFound(f"no webhook {hook_id!r} in this project")
        await self.deliveries.reload()
        self.metrics.forget(hook_id)

    async def dead_lanes(self, tenant: str, hook_id: str) -> list[Lane]:
        await self.get(tenant, hook_id)
        return await self.store.lanes(hook_id, dead_only=True)

    async def replay(self, tenant: str, hook_id: str, owner: str | None) -> list[str]:
        """Dead owners of the webhook (or just ``owner``) resume delivery at the event they stopped at."""
        await self.get(tenant, hook_id)
        revived = await self.store.replay(tenant, hook_id, owner, iso(self._clock.now()))
        await self.deliveries.reload()
        return revived


def _fields(hook: WebhookRow) -> dict[str, Any]:
    return {name: getattr(hook, name) for name in hook.__struct_fields__}
