"""``ray.embed_in: shard``: each shard runs the embedding model itself - no embedder actor, no Ray
hop per embedding. A runtime of its own (own namespace and data folder, one shard) beside the
session's, over the same stand-in LLM server."""

from __future__ import annotations

import json

import anyio
import pytest

from actors.client import ClusterMemory
from actors.ingest import ingest
from actors.placement import find_replicas
from runtime import hops
from runtime.config import load_config


@pytest.fixture(scope="module")
async def shard_embedding(tmp_path_factory, llm_server, cluster):  # `cluster`: Ray is up once for the session
    config = load_config("test", environ={}, overrides={
        "data_dir": str(tmp_path_factory.mktemp("embed-in-shard")),
        "llm": {"provider": "openai", "base_url": llm_server},
        "ray": {"shards": 1, "namespace": "memstream-embed-in-shard-test", "restart_wait_s": 90,
                "embed_in": "shard"},
    })
    memory = await ClusterMemory(config).open()
    yield memory
    await memory.cluster.stop()


async def test_the_shard_embeds_writes_and_searches_without_an_embedder_actor(shard_embedding: ClusterMemory):
    with pytest.raises(ValueError, match="Failed to look up actor with name 'embedder'"):
        find_replicas("embedder", shard_embedding.config.ray.namespace)
    for text in ("I sail on weekends", "I collect vinyl records", "My sister lives in Oslo"):
        await shard_embedding.add(text, user_id="local-embed", infer=False)
    before = {hop: count for op, hop, count, _, _ in hops.TOTALS.snapshot() if op == "search"}
    found = await shard_embedding.search("boats and sailing", user_id="local-embed", limit=1)
    assert [r["memory"] for r in found["results"]] == ["I sail on weekends"]
    used = {hop for op, hop, count, _, _ in hops.TOTALS.snapshot() if op == "search" and count > before.get(hop, 0)}
    assert {"embedder_wait_ms", "embedder_call_ms", "shard_ms"} <= used
    assert not used & {"embed_coalesce_call_ms", "embed_call_ms"}  # no Ray call to an embedder


async def test_concurrent_searches_share_the_shards_model_calls(shard_embedding: ClusterMemory):
    for topic in ("chess", "opera"):
        await shard_embedding.add(f"I love {topic}", user_id=f"local-{topic}", infer=False)
    results: dict[str, list] = {}

    async def search(topic: str) -> None:
        results[topic] = (await shard_embedding.search(topic, user_id=f"local-{topic}"))["results"]

    async with anyio.create_task_group() as tg:
        for topic in ("chess", "opera") * 8:
            tg.start_soon(search, topic)
    assert {t: [r["memory"] for r in hits] for t, hits in results.items()} == {
        t: [f"I love {t}"] for t in ("chess", "opera")}
    stats = await shard_embedding.cluster.stats()
    assert stats["embedder"]["items"] >= 18 and stats["embedder"]["batches"] >= 1


async def test_batch_ingestion_embeds_in_its_own_stage_without_an_embedder_actor(shard_embedding: ClusterMemory,
                                                                                 tmp_path):
    path = tmp_path / "turns.jsonl"
    turns = ["I live in Quito and I teach math", "I have two cats"]
    path.write_text("".join(json.dumps({"user_id": "local-ingest", "messages": [{"role": "user", "content": turn}]})
                            + "\n" for turn in turns))
    summary = await ingest(shard_embedding, path, progress=False)
    assert summary.failures == [] and summary.committed == 2
    found = await shard_embedding.search("what subject does the user teach?", user_id="local-ingest", limit=1)
    assert [r["memory"] for r in found["results"]] == ["I teach math"]
