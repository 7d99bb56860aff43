"""The extractor actor itself on the vLLM CPU build with the packaged SmolLM2: placed by the resource
policy, structured outputs through Ray, and prefix-cache hits across users (vLLM's own counters).

One engine for the module (start ~30-70 s here). Slow; CI runs it.
"""

from __future__ import annotations

import datetime as dt
import json

import anyio
import msgspec
import pytest
import ray

from actors.cluster import WORKER_ENV
from actors.models import ExtractorActor
from actors.placement import start_replicas
from actors.remote import RemoteLLM
from actors.resources import ClusterShape, extractor_plan
from runtime.config import load_config
from runtime.prompts import decision_schema, facts_schema, render_decision, render_extraction

pytestmark = pytest.mark.slow

TURNS = [
    ("u-ana", "user: I'm Ana, I live in Rome and I teach chemistry", dt.date(2026, 1, 5)),
    ("u-bo", "user: I am allergic to peanuts", dt.date(2026, 3, 9)),
    ("u-cy", "user: We adopted a beagle called Max", dt.date(2026, 7, 1)),
    ("u-di", "user: I play the cello on Tuesdays", dt.date(2026, 11, 25)),
    ("u-ed", "user: I moved to Lyon last month for a new job at a bank", dt.date(2027, 2, 2)),
]


@pytest.fixture(scope="module")
async def vllm_extractor(cluster):
    config = load_config("local", environ={})
    plan = extractor_plan(config, ClusterShape.from_ray())
    assert plan.options == {"num_cpus": 0.0, "num_gpus": 0} and not plan.on_gpu  # no GPU on this machine
    plan = msgspec.structs.replace(plan, kind="test-vllm-extractor")  # beside the session's stand-in
    [handle] = await start_replicas(ExtractorActor, plan, cluster.config.ray.namespace,
                                    (msgspec.to_builtins(config.llm),), max_concurrency=64,
                                    runtime_env={"env_vars": {**WORKER_ENV, "OMP_NUM_THREADS": "2"}})
    await handle.warm.remote()
    yield handle
    await handle.shutdown.remote()
    ray.kill(handle, no_restart=True)


async def test_extractor_actor_is_placed_without_gpus(vllm_extractor):
    placement = await vllm_extractor.placement.remote()
    assert placement["gpu_ids"] == [] and "GPU" not in placement["resources"]


async def test_structured_outputs_and_prefix_cache_hits_across_users(vllm_extractor):
    llm = RemoteLLM([vllm_extractor])
    schema = facts_schema(4, 80)
    first = await llm.complete_json(render_extraction(TURNS[0][1]), schema, name="facts")
    before = (await vllm_extractor.stats.remote())["prefix_cache"]

    answers: list[str] = []

    async def turn(conversation: str, day: dt.date) -> None:
        answers.append(await llm.complete_json(render_extraction(conversation), schema, name="facts"))

    async with anyio.create_task_group() as tg:  # concurrent: vLLM batches them
        for _, conversation, day in TURNS[1:]:
            tg.start_soon(turn, conversation, day)
    for raw in [first, *answers]:
        facts = json.loads(raw)["facts"]  # constrained decoding: always valid JSON of the schema
        assert isinstance(facts, list) and len(facts) <= 4 and all(len(f) <= 80 for f in facts)
    after = (await vllm_extractor.stats.remote())["prefix_cache"]
    queries = after["prefix_cache_queries"] - before["prefix_cache_queries"]
    hits = after["prefix_cache_hits"] - before["prefix_cache_hits"]
    rate = hits / queries
    print(f"\nprefix cache after the first turn: {hits:.0f} of {queries:.0f} prompt tokens hit ({rate:.1%}); "
          f"whole run {after['prefix_cache_hit_rate']:.1%}")
    # the extraction turns share their instructions and examples (~300 tokens): most of each prompt
    assert rate > 0.5
    assert after["prefix_cache_hit_rate"] > 0

    decision = await llm.complete_json(
        render_decision([{"id": "0", "text": "Lives in Rome"}], ["Moved to Lyon"]),
        decision_schema(["Moved to Lyon"], [["0"]]), name="decide")
    [answer] = json.loads(decision)["decisions"]  # constrained: one answer for the one fact
    assert answer["fact"] == "Moved to Lyon" and answer["id"] in ("0", "new")

