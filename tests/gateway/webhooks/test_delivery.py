"""Webhooks fed from the journal, delivered to a real HTTP receiver: signed, in each owner's
order, nothing lost while the receiver is down, dead letters an admin sees and replays, a
restart that resumes from the persisted cursors."""

from __future__ import annotations

import anyio
import pytest

from runtime.engine import AsyncMemory
from tests.gateway.conftest import NoFactsLLM, token
from tests.gateway.webhooks.conftest import add, register, serving, webhook_config

OWNERS = ["ana", "ben", "cai"]


@pytest.fixture
async def engine(config, embedder):
    async with AsyncMemory(config, llm=NoFactsLLM(), embedder=embedder) as memory:
        yield memory


async def churn(rest, users: list[str], rounds: int) -> None:
    """Adds, an update and a delete per user, users interleaved."""
    for i in range(rounds):
        for user in users:
            added = await add(rest, f"{user} fact {i}", user)
            if i == 1:
                memory_id = added["results"][0]["id"]
                await rest.ok("PUT", f"/v1/memories/{memory_id}/", json={"text": f"{user} fact {i} revised"})
                await rest.ok("DELETE", f"/v1/memories/{memory_id}/")


async def test_every_change_is_delivered_signed_in_owner_order(config, engine, receiver):
    found, url = receiver
    async with serving(webhook_config(config), engine) as (gateway, rest):
        hook = await register(rest, url)
        found.secret = hook["secret"]
        await churn(rest, OWNERS, 3)
        heads = {f"user:{u}": await engine.head(user_id=u) for u in OWNERS}
        with anyio.fail_after(60):
            await found.until_complete(heads)
        assert found.check_order_and_signatures() == {}
        first = found.by_owner("user:ana")[0]
        assert first["event_details"] == {"id": first["event_details"]["id"], "event": "ADD",
                                          "data": {"memory": "ana fact 0", "metadata": {}}}
        assert first["event_type"] == "memory_add" and first["user_id"] == "ana" and first["seq"] == 1
        assert [d["event_details"]["event"] for d in found.by_owner("user:ben")] == [
            "ADD", "ADD", "UPDATE", "DELETE", "ADD"]
        await anyio.wait_all_tasks_blocked()  # the last answers are counted
        metrics = gateway.metrics.render().decode()
        assert f'memstream_webhook_deliveries_total{{outcome="ok",webhook="{hook["webhook_id"]}"}} 15.0' in metrics
        assert "memstream_webhook_lag_seconds_bucket" in metrics


async def test_a_webhook_registered_now_gets_what_comes_after_and_filters_event_types(config, engine, receiver):
    found, url = receiver
    async with serving(webhook_config(config), engine) as (gateway, rest):
        await add(rest, "before the webhook", "dia")
        hook = await register(rest, url, event_types=["memory_delete"])
        found.secret = hook["secret"]
        added = await add(rest, "after the webhook", "dia")
        await rest.ok("DELETE", f"/v1/memories/{added['results'][0]['id']}/")
        with anyio.fail_after(60):
            await found.progress.reached(1)
        [delivery] = found.deliveries()
        assert delivery["event_details"]["event"] == "DELETE" and delivery["seq"] == 3
        assert delivery["event_details"]["data"] == {"memory": "after the webhook"}


async def test_receiver_down_for_a_while_then_back_loses_nothing(config, engine, receiver):
    found, url = receiver
    async with serving(webhook_config(config), engine) as (gateway, rest):
        hook = await register(rest, url)
        found.secret = hook["secret"]
        found.down = True
        await churn(rest, OWNERS, 2)
        with anyio.fail_after(60):
            await found.refusals.reached(10)  # every lane has been refused, some several times
        found.down = False
        heads = {f"user:{u}": await engine.head(user_id=u) for u in OWNERS}
        with anyio.fail_after(60):
            await found.until_complete(heads)
        assert found.check_order_and_signatures() == {}
        metrics = gateway.metrics.render().decode()
        assert f'memstream_webhook_deliveries_total{{outcome="failed",webhook="{hook["webhook_id"]}"}}' in metrics


async def test_dead_letter_after_n_failures_is_visible_and_replayable(config, engine, receiver):
    found, url = receiver
    async with serving(webhook_config(config, max_attempts=3), engine) as (gateway, rest):
        hook = await register(rest, url)
        hook_id, found.secret = hook["webhook_id"], hook["secret"]
        found.down = True
        await add(rest, "eve one", "eve")
        with anyio.fail_after(60):
            await found.refusals.reached(3)
        await anyio.wait_all_tasks_blocked()  # the lane records its third failure and stops
        await add(rest, "eve two", "eve")  # held behind the dead event: order is kept
        dead = await rest.ok("GET", f"/api/v1/webhooks/{hook_id}/dead-letters/")
        assert [(d["owner"], d["seq"], d["attempts"]) for d in dead["results"]] == [("user:eve", 1, 3)]
        assert "HTTP 503" in dead["results"][0]["last_error"]
        await gateway.web.webhooks.deliveries.scan()
        assert 'memstream_webhook_dead_lanes{webhook="' + hook_id + '"} 1.0' in gateway.metrics.render().decode()
        status, refused = await rest.as_(token(rights=["read", "write"])).call(
            "GET", f"/api/v1/webhooks/{hook_id}/dead-letters/")
        assert status == 403 and "admin" in refused["detail"]
        found.down = False
        replayed = await rest.ok("POST", f"/api/v1/webhooks/{hook_id}/replay/", json={})
        assert replayed["owners"] == ["user:eve"]
        with anyio.fail_after(60):
            await found.until_complete({"user:eve": 2})
        assert [d["event_details"]["data"]["memory"] for d in found.by_owner("user:eve")] == ["eve one", "eve two"]
        assert (await rest.ok("GET", f"/api/v1/webhooks/{hook_id}/dead-letters/"))["results"] == []


async def test_a_restart_resumes_from_the_persisted_cursors(config, engine, receiver):
    found, url = receiver
    settings = webhook_config(config)
    async with serving(settings, engine) as (_, rest):
        hook = await register(rest, url)
        found.secret = hook["secret"]
        await churn(rest, OWNERS, 1)
        heads = {f"user:{u}": await engine.head(user_id=u) for u in OWNERS}
        with anyio.fail_after(60):
            await found.until_complete(heads)
    for user in OWNERS:  # committed while no gateway delivers
        await engine.add(f"{user} while down", user_id=user, infer=False)
    delivered_before = len(found.received)
    async with serving(settings, engine):
        heads = {f"user:{u}": await engine.head(user_id=u) for u in OWNERS}
        with anyio.fail_after(60):
            await found.until_complete(heads)
    assert found.check_order_and_signatures() == {}  # no gap, and nothing delivered twice
    assert len(found.received) == delivered_before + len(OWNERS)


async def test_webhook_crud_needs_admin_and_the_tokens_project(config, engine, receiver):
    _, url = receiver
    async with serving(webhook_config(config), engine) as (_, rest):
        hook = await register(rest, url, event_types=["memory_add"])
        listed = await rest.ok("GET", "/api/v1/webhooks/projects/default/")
        assert [(h["webhook_id"], h["event_types"], h.get("secret")) for h in listed] == [
            (hook["webhook_id"], ["memory_add"], None)]  # the secret is shown once, at creation
        changed = await rest.ok("PUT", f"/api/v1/webhooks/{hook['webhook_id']}/",
                                json={"name": "renamed", "event_types": ["memory_update"], "is_active": False})
        assert (changed["name"], changed["event_types"], changed["is_active"]) == ("renamed", ["memory_update"], False)
        status, body = await rest.call("GET", "/api/v1/webhooks/projects/another/")
        assert status == 404 and "another" in body["detail"]
        writer = rest.as_(token(rights=["read", "write", "subscribe"]))
        status, _ = await writer.call("POST", "/api/v1/webhooks/projects/default/", json={"url": url, "name": "x"})
        assert status == 403
        assert (await rest.ok("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}/"))["message"]
        assert await rest.ok("GET", "/api/v1/webhooks/projects/default/") == []
        status, _ = await rest.call("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}/")
        assert status == 404
