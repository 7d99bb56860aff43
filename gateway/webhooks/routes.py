"""Webhook administration over REST, on the paths mem0ai's client uses (``create_webhook``,
``get_webhooks``, ``update_webhook``, ``delete_webhook``), plus memstream's dead-letter view
and replay. Every one needs the ``admin`` right; the project is the token's tenant."""

from __future__ import annotations

import datetime as dt

from gateway.rest import replies as r
from gateway.rest.api import Call, Route
from gateway.rest.bodies import ReplayBody, WebhookCreate, WebhookUpdate
from gateway.webhooks.admin import WebhookAdmin
from gateway.webhooks.store import WebhookRow
from runtime.errors import NotFound


def _admin(call: Call) -> WebhookAdmin:
    call.grant.require("admin")
    project = call.params.get("project_id")
    if project is not None and project != call.tenant:
        raise NotFound(f"no project {project!r} for this API key (its project is {call.tenant!r})")
    return call.services.webhooks


def _out(hook: WebhookRow, *, with_secret: bool = False) -> r.Webhook:
    return r.Webhook(webhook_id=hook.id, name=hook.name, url=hook.url, event_types=hook.event_types,
                     project=hook.tenant, is_active=hook.is_active, created_at=hook.created_at,
                     updated_at=hook.updated_at, secret=hook.secret if with_secret else None)


async def create(call: Call) -> r.Webhook:
    return _out(await _admin(call).create(call.tenant, call.body), with_secret=True)


async def listing(call: Call) -> list[r.Webhook]:
    return [_out(hook) for hook in await _admin(call).list(call.tenant)]


async def update(call: Call) -> r.Webhook:
    return _out(await _admin(call).update(call.tenant, call.params["webhook_id"], call.body))


async def delete(call: Call) -> r.Done:
    await _admin(call).delete(call.tenant, call.params["webhook_id"])
    return r.Done(message="Webhook deleted successfully")


async def dead_letters(call: Call) -> r.DeadLetters:
    hook_id = call.params["webhook_id"]
    lanes = await _admin(call).dead_lanes(call.tenant, hook_id)
    return r.DeadLetters(webhook_id=hook_id, results=[
        r.DeadLane(owner=lane.owner, seq=lane.delivered + 1, attempts=lane.attempts, last_error=lane.last_error,
                   since=None if lane.dead_since is None else
                   dt.datetime.fromtimestamp(lane.dead_since, dt.UTC).isoformat())
        for lane in lanes])


async def replay(call: Call) -> r.Replayed:
    body: ReplayBody = call.body
    revived = await _admin(call).replay(call.tenant, call.params["webhook_id"], body.owner)
    return r.Replayed(message=f"{len(revived)} dead owner(s) resume delivery", owners=revived)


_PROJECT = "/api/v1/webhooks/projects/{project_id}/"
_HOOK = "/api/v1/webhooks/{webhook_id}/"
ROUTES = [
    Route("GET", _PROJECT, "list_webhooks", "The project's webhooks (admin)", listing, list[r.Webhook],
          tag="webhooks"),
    Route("POST", _PROJECT, "create_webhook", "Register a webhook; the answer carries its signing secret (admin)",
          create, r.Webhook, body=WebhookCreate, tag="webhooks"),
    Route("PUT", _HOOK, "update_webhook", "Change a webhook's name, URL, event types or activity (admin)", update,
          r.Webhook, body=WebhookUpdate, tag="webhooks"),
    Route("DELETE", _HOOK, "delete_webhook", "Remove a webhook and its cursors (admin)", delete, r.Done,
          tag="webhooks"),
    Route("GET", _HOOK + "dead-letters/", "webhook_dead_letters",
          "Owners whose deliveries stopped after too many failures, at the seq they stopped (admin)", dead_letters,
          r.DeadLetters, tag="webhooks"),
    Route("POST", _HOOK + "replay/", "replay_webhook", "Resume dead-lettered owners where they stopped (admin)",
          replay, r.Replayed, body=ReplayBody, tag="webhooks"),
]
