"""Graph memory on the actor runtime: relation events cross the Ray boundary in order with memory events.

A runtime of its own (its own namespace and data folder, one shard) with graph memory on, beside
the session's runtime, over the same stand-in LLM server (which answers the relations call by rule).
"""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from actors.client import ClusterMemory
from runtime.config import load_config
from runtime.model import MemoryAdded, RelationAdded, RelationInvalidated


@pytest.fixture(scope="module")
async def graph_cluster(tmp_path_factory, llm_server, cluster):  # `cluster`: Ray is up once for the session
    config = load_config("test", environ={}, overrides={
        "data_dir": str(tmp_path_factory.mktemp("graph-cluster")),
        "llm": {"provider": "openai", "base_url": llm_server},
        "ray": {"shards": 1, "namespace": "memstream-graph-test", "restart_wait_s": 90},
        "graph": {"enabled": True},
    })
    memory = await ClusterMemory(config).open()
    yield memory
    await memory.cluster.stop()


async def test_relation_events_arrive_through_cluster_subscribe(graph_cluster: ClusterMemory):
    seen: list = []

    async def consume(task_status=anyio.TASK_STATUS_IGNORED) -> None:
        async with aclosing(graph_cluster.subscribe(user_id="graph-sub")) as events:
            task_status.started()
            async for event in events:
                seen.append(event)
                if len(seen) == 5:
                    return

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            await tg.start(consume)
            first = await graph_cluster.add("I live in Berlin", user_id="graph-sub")
            assert [(r["event"], r["relationship"], r["destination"]) for r in first["relations"]] == [
                ("ADD", "lives_in", "Berlin")]
            await graph_cluster.add("I moved to Lisbon", user_id="graph-sub")
    kinds = [type(e) for e in seen]
    assert kinds[:2] == [MemoryAdded, RelationAdded]
    assert RelationInvalidated in kinds and kinds.count(RelationAdded) == 2
    assert [e.seq for e in seen] == list(range(1, 6))
    invalidated = next(e for e in seen if isinstance(e, RelationInvalidated))
    assert invalidated.destination == "Berlin" and invalidated.invalid_at is not None
    found = await graph_cluster.search("where does the user live?", user_id="graph-sub")
    assert [r["destination"] for r in found["relations"]] == ["Lisbon"]
    everything = await graph_cluster.get_all(user_id="graph-sub", include_invalidated=True)
    assert {r["destination"] for r in everything["relations"]} == {"Berlin", "Lisbon"}
