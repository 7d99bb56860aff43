"""Extractor replicas behind the least-loaded choice, on the session's Ray: the load is spread, and
a replica whose process is gone does not stall calls (they go to the live one at once)."""

from __future__ import annotations

import anyio
import msgspec
import ray

from actors.models import ExtractorActor
from actors.placement import find_replicas, start_replicas
from actors.remote import RemoteLLM
from actors.resources import ClusterShape, extractor_plan
from runtime.config import load_config
from runtime.prompts import facts_schema, render_extraction

SCHEMA = facts_schema(4, 80)


def turn(i: int) -> list[dict[str, str]]:
    import datetime as dt

    return render_extraction(f"user: I like topic {i}")


async def test_calls_spread_over_replicas_and_skip_a_dead_one(cluster, llm_server):
    namespace = cluster.config.ray.namespace
    config = load_config("test", environ={}, overrides={"llm": {"provider": "openai", "base_url": llm_server},
                                                        "ray": {"extractor_replicas": 2}})
    plan = msgspec.structs.replace(extractor_plan(config, ClusterShape.from_ray()), kind="test-replica")
    handles = await start_replicas(ExtractorActor, plan, namespace, (msgspec.to_builtins(config.llm),))
    assert [h._actor_id for h in find_replicas("test-replica", namespace)] == [h._actor_id for h in handles]
    try:
        llm = RemoteLLM(handles, wait_s=30, cooldown_s=60)

        async def one(i: int) -> None:
            await llm.complete_json(turn(i), SCHEMA, name="facts")

        async def many(n: int) -> None:
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)

        await many(20)
        calls = [(await h.stats.remote())["calls"] for h in handles]
        assert sum(calls) == 20 and min(calls) >= 5, calls

        dead = llm._replicas.balancer.stats[0]
        calls_before, failures_before = dead.calls, dead.failures
        ray.kill(handles[0], no_restart=True)  # gone for good: Ray will not bring it back
        await many(20)
        # no waiting on the dead replica, counted rather than timed: the calls already routed to it
        # (the least-loaded split sends half of the 20 there) failed there once each and went on to
        # the live one; a call retried on the dead replica again would push the count past 10
        tried = dead.calls - calls_before
        assert tried == dead.failures - failures_before and 1 <= tried <= 10, (tried, dead)
        assert (await handles[1].stats.remote())["calls"] == calls[1] + 20
        assert llm._replicas.balancer.suspects() == [0]
    finally:
        for handle in handles:
            ray.kill(handle, no_restart=True)


def test_replica_stats_merge_into_one_view():
    from actors.cluster import merge_stats

    merged = merge_stats([{"batches": 2, "items": 10, "max_batch": 8, "mean_batch": 5.0, "prefix_cache": {}},
                          {"batches": 3, "items": 5, "max_batch": 2, "mean_batch": 1.67}])
    assert merged == {"batches": 5, "items": 15, "max_batch": 8, "mean_batch": 3.0, "replicas": 2}
    assert merge_stats([{"calls": 1}]) == {"calls": 1}
