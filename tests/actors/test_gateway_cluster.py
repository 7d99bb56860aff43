"""The gateway in front of the actor runtime on Ray: the production layout of ``memstream serve``."""

from __future__ import annotations

from contextlib import aclosing

import anyio

from gateway.client import MemoryClient
from tests.gateway.conftest import gateway_config, raw_client, start_gateway, token


async def test_gateway_serves_the_shard_actors(cluster):
    stop = anyio.Event()
    gateway, task = await start_gateway(gateway_config(cluster.config), cluster, stop)
    url = f"ws://127.0.0.1:{gateway.port}/ws"
    try:
        admin_ws, admin = await raw_client(url, auth=token(["*"], rights=["admin"]))
        await admin.call({"type": "subscribe", "id": "all", "tenant_wide": True})
        async with MemoryClient(url, token(["user:gw-ann", "user:gw-ben"])) as client:
            seen = []

            async def watch() -> None:
                async with aclosing(client.subscribe(user_id="gw-ann")) as events:
                    async for event in events:
                        seen.append(event.seq)
                        if event.seq == 3:
                            return

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await client.add("I play chess on Sundays", user_id="gw-ann")
                await client.add("Ann keeps bees", user_id="gw-ann", infer=False)
                await client.add("Ann keeps two hives", user_id="gw-ann", infer=False)
                await client.add("Ben rides a unicycle", user_id="gw-ben", infer=False)
            assert seen == [1, 2, 3]
            found = await client.search("insects", user_id="gw-ann", limit=1)
            assert "bees" in found["results"][0]["memory"] or "hives" in found["results"][0]["memory"]
            memory_id = found["results"][0]["id"]
            assert (await client.get(memory_id))["user_id"] == "gw-ann"  # by id: asked of every shard
            await client.delete(memory_id)
        owners = set()
        while len(owners) < 2:
            frame = await admin.until("event", timeout=30)
            owners.add(frame["owner"])
        assert owners == {"user:gw-ann", "user:gw-ben"}  # both shards' events on one stream
        await admin_ws.close()
    finally:
        stop.set()
        await task
