"""The engine on Ray: shard actors, model actors, routing, typed errors, streaming, recovery."""

from __future__ import annotations

import os
import signal
from contextlib import aclosing

import anyio
import pytest
import ray

from actors.client import ClusterMemory
from actors.remote import RESTARTING
from actors.router import Router
from runtime import hops
from runtime.errors import BackendUnavailable, InvalidRequest, NotFound, Overloaded
from tests.progress import Progress


async def pid_of(handle) -> int:
    """The actor's process id, once it is up (it may still be restarting from the last kill)."""
    while True:
        try:
            return await handle.pid.remote()
        except RESTARTING:
            await anyio.sleep(0.2)


async def test_concurrent_users_keep_their_order_and_model_work_is_batched(cluster: ClusterMemory):
    users = [f"order-{u}" for u in range(12)]

    async def writer(user: str) -> None:
        for i in range(4):
            await cluster.add(f"I own a {['bike', 'boat', 'kite', 'drum'][i]} number {i}", user_id=user)

    async with anyio.create_task_group() as tg:
        for user in users:
            tg.start_soon(writer, user)
    for user in users:
        log = await cluster.history(user_id=user)
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        assert [e["new_memory"] for e in log] == [f"I own a {t} number {i}" for i, t in
                                                  enumerate(["bike", "boat", "kite", "drum"])]
    stats = await cluster.cluster.stats()
    assert stats["embedder"]["items"] >= 48 and stats["embedder"]["mean_batch"] > 1.0
    assert stats["llm"]["route"] == "shard"  # an HTTP LLM: the shards call it themselves
    assert stats["llm"]["calls"] >= 48 and stats["llm"]["peak_in_flight"] > 1
    assert "extractor" not in cluster.cluster.plans and cluster.cluster.extractors == []
    hits = (await cluster.search("what boat?", user_id="order-3"))["results"]
    assert hits[0]["memory"] == "I own a boat number 1"


async def test_typed_errors_cross_the_actor_boundary(cluster: ClusterMemory):
    with pytest.raises(InvalidRequest, match="messages"):
        await cluster.add([{"role": "robot", "content": "x"}], user_id="errors")
    with pytest.raises(NotFound):
        await cluster.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidRequest):
        await cluster.add("no scope")
    added = await cluster.add("I like opera", user_id="errors", infer=False)
    memory_id = added["results"][0]["id"]
    assert (await cluster.get(memory_id))["memory"] == "I like opera"
    await cluster.update(memory_id, "I love opera")
    assert [h["event"] for h in await cluster.history(memory_id)] == ["ADD", "UPDATE"]
    await cluster.delete(memory_id)
    with pytest.raises(NotFound):
        await cluster.get(memory_id)


async def test_subscription_streams_in_order_across_the_actor_boundary(cluster: ClusterMemory):
    await cluster.add("first note", user_id="subscriber", infer=False)
    seen: list[int] = []

    async def consume() -> None:
        async with aclosing(cluster.subscribe(user_id="subscriber")) as events:
            async for event in events:
                seen.append(event.seq)
                if event.seq == 6:
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for i in range(5):
            await cluster.add(f"note {i}", user_id="subscriber", infer=False)
    assert seen == [1, 2, 3, 4, 5, 6]


async def test_killed_shard_recovers_from_the_journal_mid_traffic(cluster: ClusterMemory):
    users = [f"crash-{u}" for u in range(8)]
    name = cluster.router.shard_of("default", "user:crash-0")
    victims = [u for u in users if cluster.router.shard_of("default", f"user:{u}") == name]
    events: list[int] = []

    async def watch() -> None:
        async with aclosing(cluster.subscribe(user_id=victims[0])) as stream:
            async for event in stream:
                events.append(event.seq)
                if len(events) == 10:
                    return

    done = Progress()
    retries_before = cluster.router.retries

    async def writer(user: str) -> None:
        for i in range(10):
            await cluster.add(f"crash note {i}", user_id=user, infer=False, request_id=f"{user}-{i}")
            done.add()

    async def killer() -> None:
        for threshold in (10, 40):  # kill in the middle of the traffic, twice
            await done.reached(threshold)
            os.kill(await pid_of(cluster.cluster.shards[name]), signal.SIGKILL)

    with anyio.fail_after(240):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            tg.start_soon(killer)
            async with anyio.create_task_group() as writers:
                for user in users:
                    writers.start_soon(writer, user)
    assert cluster.router.retries > retries_before  # the kills were felt and retried
    for user in users:
        log = await cluster.history(user_id=user)
        assert [e["seq"] for e in log] == list(range(1, 11))  # gapless, nothing twice
        assert [e["cause"] for e in log] == [f"{user}-{i}" for i in range(10)]
        indexed = {m["id"] for m in (await cluster.get_all(user_id=user))["results"]}
        replayed = {m["id"] for m in (await cluster.get_all(user_id=user, as_of=10))["results"]}
        assert indexed == replayed and len(indexed) == 10
    assert events == list(range(1, 11))


async def test_a_full_mailbox_is_refused_across_the_actor_boundary(cluster: ClusterMemory):
    capacity = cluster.config.memory.mailbox_capacity
    outcomes: list[object] = []

    async def add(i: int) -> None:
        try:
            outcomes.append(await cluster.add(f"burst fact number {i}", user_id="burst"))
        except Overloaded as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        for i in range(capacity + 40):
            tg.start_soon(add, i)
    refused = sum(isinstance(o, Overloaded) for o in outcomes)
    assert refused > 0 and len(outcomes) - refused >= capacity  # refused explicitly, the rest all committed
    assert await cluster.head(user_id="burst") == len(outcomes) - refused


async def test_a_shard_that_stays_down_fails_with_a_typed_error_within_the_bound():
    @ray.remote(num_cpus=0, max_restarts=0)
    class Gone:
        async def call(self, operation, kwargs):
            return None

    handle = Gone.remote()
    ray.kill(handle, no_restart=True)
    router = Router({"shard-x": handle}, restart_wait_s=1.0)
    started = anyio.current_time()
    with pytest.raises(BackendUnavailable, match="did not come back"):
        await router.call("shard-x", "head", {"user_id": "u"})
    assert anyio.current_time() - started < 10


async def test_a_search_brings_back_the_time_of_each_hop(cluster: ClusterMemory):
    """The shard and the embedder time their hops and send them back with the reply; the caller's
    process adds them up per operation (``runtime.hops``). Nested hops hold inside each other."""
    await cluster.add("I sail on weekends", user_id="hops", infer=False)
    before = {hop: (count, total) for op, hop, count, total, _ in hops.TOTALS.snapshot() if op == "search"}
    await cluster.search("sailing", user_id="hops")
    after = {hop: (count, total) for op, hop, count, total, _ in hops.TOTALS.snapshot() if op == "search"}
    one = {hop: total - before.get(hop, (0, 0.0))[1] for hop, (count, total) in after.items()
           if count > before.get(hop, (0, 0.0))[0]}
    assert {"shard_search_wait_ms", "shard_search_call_ms", "shard_ms", "embed_coalesce_wait_ms",
            "embed_coalesce_call_ms", "embedder_wait_ms", "embedder_call_ms"} <= set(one)
    assert one["shard_search_call_ms"] >= one["shard_ms"] >= one["embed_coalesce_call_ms"] >= one["embedder_call_ms"]


async def test_concurrent_searches_share_ray_calls_and_each_gets_its_own_answer(cluster: ClusterMemory):
    for topic in ("sailing", "chess", "opera"):
        await cluster.add(f"I love {topic}", user_id=f"batch-{topic}", infer=False)
    results: dict[str, list] = {}

    async def search(topic: str) -> None:
        results[topic] = (await cluster.search(topic, user_id=f"batch-{topic}"))["results"]

    async with anyio.create_task_group() as tg:
        for topic in ("sailing", "chess", "opera") * 8:
            tg.start_soon(search, topic)
    assert {t: [r["memory"] for r in hits] for t, hits in results.items()} == {
        t: [f"I love {t}"] for t in ("sailing", "chess", "opera")}
    batchers = cluster._search_batchers.values()
    assert sum(b.stats.items for b in batchers) >= 24 > sum(b.stats.batches for b in batchers)
    failures = []

    async def bad_search() -> None:
        try:
            await cluster.search("   ", user_id="batch-sailing")
        except InvalidRequest as exc:
            failures.append(exc)

    results.clear()
    async with anyio.create_task_group() as tg:  # a bad search fails alone, not the call it shared
        tg.start_soon(search, "sailing")
        tg.start_soon(bad_search)
    assert len(failures) == 1 and results["sailing"][0]["memory"] == "I love sailing"


async def test_searches_take_the_shards_read_socket_and_survive_its_restart(cluster: ClusterMemory):
    """On the shard's node a search batch goes over the shard's Unix socket, not a Ray call; when the
    shard's process dies the search is answered over Ray (which waits for the restart) and the
    socket of the restarted shard is found again within the back-off's bound."""
    await cluster.add("I collect stamps", user_id="socket-reader", infer=False)
    name = cluster.router.shard_of("default", "user:socket-reader")
    [hit] = (await cluster.search("stamps", user_id="socket-reader"))["results"]
    assert cluster._direct is not None
    assert cluster._direct.counts["socket"] >= 1 and hit["memory"] == "I collect stamps"
    os.kill(await pid_of(cluster.cluster.shards[name]), signal.SIGKILL)
    before = dict(cluster._direct.counts)
    for _ in range(8):  # the back-off after one failure skips 2 batches, then tries the new socket
        [hit] = (await cluster.search("stamps", user_id="socket-reader"))["results"]
        assert hit["memory"] == "I collect stamps"
    after = cluster._direct.counts
    assert after["ray"] > before["ray"] and after["socket"] > before["socket"]
