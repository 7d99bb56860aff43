"""Webhooks through a crash: shard actors are SIGKILLed while their owners' events are being
delivered. Nothing is lost, each owner's deliveries stay in order, and a redelivery (at most)
repeats a seq already delivered.

A runtime of its own on the session's Ray instance (own namespace and data folder, two shards),
the gateway in this process delivering to a real HTTP receiver.
"""

from __future__ import annotations

import os
import signal
import time

import aiohttp
import anyio
import pytest

from actors.client import ClusterMemory
from runtime.config import load_config
from tests.doubles import http_server
from tests.gateway.conftest import running_gateway, token
from tests.gateway.rest.conftest import ADMIN, Rest
from tests.gateway.webhooks.conftest import FAST, register
from tests.gateway.webhooks.receiver import Receiver
from tests.reliability.test_crash import pid_of

USERS = 12
TURNS = 6


@pytest.fixture(scope="module")
async def webhook_cluster(tmp_path_factory, llm_server, cluster):  # `cluster`: Ray is up once for the session
    config = load_config("test", environ={}, overrides={
        "data_dir": str(tmp_path_factory.mktemp("webhook-cluster")),
        "llm": {"provider": "openai", "base_url": llm_server},
        "ray": {"shards": 2, "namespace": "memstream-webhook-test", "restart_wait_s": 120},
        "webhooks": FAST,
    })
    memory = await ClusterMemory(config).open()
    yield memory
    await memory.cluster.stop()


async def test_kill_9_of_shards_during_delivery_loses_nothing(webhook_cluster: ClusterMemory, figures):
    memory = webhook_cluster
    receiver = Receiver()
    users = [f"hook-user-{u}" for u in range(USERS)]
    total = USERS * TURNS
    kills = 0
    async with http_server(receiver.app()) as base, running_gateway(memory.config, memory) as gateway, \
            aiohttp.ClientSession() as session:
        await gateway.web.webhooks.deliveries.leading.wait()
        rest = Rest(f"http://127.0.0.1:{gateway.port}", session, token(rights=ADMIN))
        receiver.secret = (await register(rest, base.removesuffix("/v1") + "/hook"))["secret"]

        async def writer(user: str) -> None:
            for i in range(TURNS):
                await memory.add(f"{user} saw comet {i}", user_id=user, infer=False, request_id=f"{user}-{i}")

        async def killer() -> None:
            nonlocal kills
            for share, name in ((0.25, memory.router.names[0]), (0.6, memory.router.names[1])):
                await receiver.progress.reached(share * total)  # deliveries are under way
                os.kill(await pid_of(memory.cluster.shards[name]), signal.SIGKILL)
                kills += 1

        started = time.perf_counter()
        with anyio.fail_after(300):  # a safety net: the waits are on the receiver's count
            async with anyio.create_task_group() as tg:
                tg.start_soon(killer)
                for user in users:
                    tg.start_soon(writer, user)
            heads = {f"user:{user}": await memory.head(user_id=user) for user in users}
            await receiver.until_complete(heads)
        elapsed = time.perf_counter() - started
    assert kills == 2 and all(head == TURNS for head in heads.values())
    duplicates = receiver.check_order_and_signatures()  # in order; a repeat only of a delivered seq
    for owner in heads:
        assert [d["event_details"]["data"]["memory"] for d in receiver.by_owner(owner)] == [
            f"{owner.split(':')[1]} saw comet {i}" for i in range(TURNS)]
    listed = {row["owner"]: row for row in await memory.owners(counts=True)}  # merged over both shards
    assert all(listed[owner]["head"] == TURNS and listed[owner]["memories"] == TURNS for owner in heads)
    assert await memory.count(user_id=users[0]) == TURNS and await memory.count(user_id=users[0], as_of=2) == 2
    figures.record("webhook_crash", owners=USERS, events=total, shard_kills=kills,
                   deliveries=len(receiver.received), duplicates=sum(duplicates.values()), lost=0,
                   seconds=round(elapsed, 1))
