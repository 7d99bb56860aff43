"""The webhook store on both of the journal's databases: registrations, cursors, dead letters and
the delivery lease."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from gateway.webhooks.policy import Lane
from gateway.webhooks.store import PostgresWebhookStore, SQLiteWebhookStore, WebhookRow
from runtime.errors import BackendUnavailable
from tests.conftest import POSTGRES_DSN

HOOK = WebhookRow(id="wh_1", tenant="t1", name="n", url="http://x/hook", secret="s" * 20,
                  event_types=["memory_add"], created_at="2026-01-01T00:00:00+00:00",
                  updated_at="2026-01-01T00:00:00+00:00")


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        found = SQLiteWebhookStore(tmp_path / "webhooks.sqlite3")
        await found.open()
        yield found
        await found.close()
        return
    found = PostgresWebhookStore(POSTGRES_DSN, schema=f"test_{uuid.uuid4().hex[:12]}", timeout_s=5)
    try:
        await found.open()
    except BackendUnavailable as exc:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}")
    yield found
    await found.drop()
    await found.close()


async def test_registrations_and_their_cursors(store):
    await store.create(HOOK, [Lane(webhook_id="wh_1", owner="user:a", delivered=4)])
    assert await store.webhooks("t1") == [HOOK] and await store.webhooks("t2") == []
    assert await store.webhook("t2", "wh_1") is None  # another tenant's id is not found
    changed = msgspec.structs.replace(HOOK, name="m", is_active=False, event_types=["memory_delete"])
    await store.update(changed)
    assert await store.webhook("t1", "wh_1") == changed
    dead = Lane(webhook_id="wh_1", owner="user:b", delivered=2, attempts=3, dead=True, last_error="HTTP 500",
                dead_since=5.0)
    await store.save_lane(dead)
    await store.save_lane(Lane(webhook_id="wh_1", owner="user:a", delivered=7))
    assert [(lane.owner, lane.delivered) for lane in await store.lanes("wh_1")] == [("user:a", 7), ("user:b", 2)]
    assert await store.lanes("wh_1", dead_only=True) == [dead]
    assert await store.replay("t1", "wh_1", None, "2026-01-02T00:00:00+00:00") == ["user:b"]
    assert await store.lanes("wh_1", dead_only=True) == []
    assert (await store.webhook("t1", "wh_1")).updated_at == "2026-01-02T00:00:00+00:00"
    assert not await store.delete("t2", "wh_1") and await store.delete("t1", "wh_1")
    assert await store.lanes("wh_1") == [] and await store.webhooks() == []


async def test_one_holder_of_the_lease_at_a_time(store):
    assert await store.lease("a", now=100.0, ttl_s=10)
    assert not await store.lease("b", now=105.0, ttl_s=10)  # a holds it
    assert await store.lease("a", now=105.0, ttl_s=10)  # a renews
    assert not await store.lease("b", now=114.0, ttl_s=10)
    assert await store.lease("b", now=115.5, ttl_s=10)  # a's lease ran out: b takes over
    await store.release("b")
    assert await store.lease("c", now=116.0, ttl_s=10)  # released: taken at once
