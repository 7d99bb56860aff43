"""Crash: shard, embedder and extractor actors are SIGKILLed, repeatedly, while 100 users add turns.

A runtime of its own on the session's Ray instance (own namespace and data folder, two shards,
graph memory on) over the stand-in LLM server, so every turn goes through the extractor
(facts, relations, decision), the embedder, the journal, Qdrant Edge and LadybugDB. Afterwards:
every add completed; each owner's journal is gapless and holds each request id's entries once;
the vector store and the graph store equal the journal's replay; subscribers got every event.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from actors.client import ClusterMemory
from actors.remote import RESTARTING
from runtime.config import load_config
from tests.progress import Progress

USERS = 100
TURNS = 5
SUBSCRIBED = 20  # owners followed by a live subscriber through every kill
THINGS = ["stamps", "coins", "shells", "maps", "kites", "bells", "cards", "fossils", "badges", "clocks"]


@pytest.fixture(scope="module")
async def crash_cluster(tmp_path_factory, llm_server, cluster):  # `cluster`: Ray is up once for the session
    config = load_config("test", environ={}, overrides={
        "data_dir": str(tmp_path_factory.mktemp("crash-cluster")),
        "llm": {"provider": "openai", "base_url": llm_server},
        # every LLM call through the extractor actor (not straight from the shards), so it can be killed too
        "ray": {"shards": 2, "namespace": "memstream-crash-test", "restart_wait_s": 120, "llm_calls": "extractor"},
        "memory": {"mailbox_capacity": 64},
        "graph": {"enabled": True},
    })
    memory = await ClusterMemory(config).open()
    yield memory
    await memory.cluster.stop()


async def pid_of(handle: Any) -> int:
    """The actor's process id once it answers (it may still be restarting from the last kill)."""
    while True:
        try:
            return await handle.pid.remote()
        except RESTARTING:
            await anyio.sleep(0.2)


def turn(user: int, i: int) -> str:
    return f"I collect {THINGS[(user + i) % len(THINGS)]} from town {user}-{i}"


async def test_kill_9_of_every_actor_kind_loses_nothing_and_applies_nothing_twice(crash_cluster: ClusterMemory,
                                                                                 figures):
    memory, runtime = crash_cluster, crash_cluster.cluster
    users = [f"crash-user-{u}" for u in range(USERS)]
    results: dict[str, dict[str, Any]] = {}  # request id -> the add's answer
    failures: list[tuple[str, BaseException]] = []
    done = Progress()
    total = USERS * TURNS
    # (progress threshold, actor kind): each shard three times, the embedder and the extractor three times each
    kinds = ["shard-0", "embedder", "shard-1", "extractor"] * 3
    plan = [(0.05 + 0.07 * i, kind) for i, kind in enumerate(kinds)]
    kills: Counter[str] = Counter()
    seen: dict[str, list[int]] = {u: [] for u in users[:SUBSCRIBED]}
    delivered = {u: Progress() for u in seen}
    retries_before = memory.router.retries

    def handle_of(kind: str) -> Any:
        if kind == "embedder":
            return runtime.embedder
        if kind == "extractor":
            return runtime.extractor
        return runtime.shards[memory.router.names[int(kind.split("-")[1])]]

    async def writer(u: int, user: str) -> None:
        for i in range(TURNS):
            request_id = f"{user}-turn-{i}"
            try:
                results[request_id] = await memory.add([{"role": "user", "content": turn(u, i)}], user_id=user,
                                                       request_id=request_id)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding, asserted below
                failures.append((request_id, exc))
            done.add()

    async def killer() -> None:
        for share, kind in plan:
            await done.reached(share * total)
            os.kill(await pid_of(handle_of(kind)), signal.SIGKILL)
            kills[kind.split("-")[0]] += 1

    async def subscriber(user: str) -> None:
        async with aclosing(memory.subscribe(user_id=user)) as events:
            async for event in events:
                seen[user].append(event.seq)
                delivered[user].add()

    started = time.perf_counter()
    with anyio.fail_after(240):
        async with anyio.create_task_group() as watchers:
            for user in seen:
                watchers.start_soon(subscriber, user)
            async with anyio.create_task_group() as tg:
                tg.start_soon(killer)
                for u, user in enumerate(users):
                    tg.start_soon(writer, u, user)
            heads = {user: await memory.head(user_id=user) for user in users}
            for user in seen:  # every subscriber has had as many events as its head
                await delivered[user].reached(heads[user])
            watchers.cancel_scope.cancel()
    elapsed = time.perf_counter() - started

    assert not failures, failures[:5]
    assert sum(kills.values()) == len(plan)
    entries = duplicates = 0
    for user in users:
        log = await memory.history(user_id=user)
        assert [e["seq"] for e in log] == list(range(1, heads[user] + 1)), user  # gapless, from 1
        by_cause = Counter(e["cause"] for e in log)
        wanted = [f"{user}-turn-{i}" for i in range(TURNS)]
        assert set(by_cause) == set(wanted), (user, by_cause)  # every accepted add is in the journal
        for request_id in wanted:  # ... with exactly the entries its answer reported: applied once
            answer = results[request_id]
            reported = len(answer["results"]) + len(answer.get("relations", []))
            duplicates += max(0, by_cause[request_id] - reported)
            assert by_cause[request_id] == reported, (request_id, by_cause[request_id], answer)
        assert [e["cause"] for e in log] == sorted((e["cause"] for e in log), key=wanted.index)  # in order
        entries += len(log)
        now = await memory.get_all(user_id=user, include_invalidated=True)
        replayed = await memory.get_all(user_id=user, as_of=heads[user], include_invalidated=True)
        assert {(m["id"], m["memory"]) for m in now["results"]} == \
            {(m["id"], m["memory"]) for m in replayed["results"]}, user  # vector store == journal
        assert {r["id"] for r in now["relations"]} == {r["id"] for r in replayed["relations"]}, user  # graph
        assert now["results"] and now["relations"]
    for user, seqs in seen.items():  # every event once, in order, across every kill
        assert seqs == list(range(1, heads[user] + 1)), (user, seqs)
    retries = memory.router.retries - retries_before
    assert kills["shard"] == 6 and retries > 0  # the shard kills were felt by callers and retried
    figures.record("crash", users=USERS, adds=total, adds_completed=len(results), journal_entries=entries,
                   kills=dict(kills), router_retries=retries, subscribers=SUBSCRIBED,
                   events_delivered=sum(len(s) for s in seen.values()), lost=total - len(results),
                   duplicates=duplicates, seconds=round(elapsed, 1))
