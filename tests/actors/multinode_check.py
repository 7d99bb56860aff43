"""Run by test_multinode.py in a process of its own (it needs its own Ray cluster):
two Ray nodes on this machine, the journal on PostgreSQL; remove the node that hosts a shard
and check that its owners go on, on the other node, with gapless history."""

from __future__ import annotations

import json
import sys
import uuid

import anyio
import ray
from aiohttp import web
from ray.cluster_utils import Cluster

from actors.client import ClusterMemory
from runtime.config import load_config
from scripts.fake_llm_server import make_app


async def main(data_dir: str, dsn: str) -> dict:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        return await check(cluster, data_dir, dsn)
    finally:
        ray.shutdown()
        cluster.shutdown()  # also removes Ray's note of this cluster, which a later ray.init would join


async def check(cluster: Cluster, data_dir: str, dsn: str) -> dict:
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    runner = web.AppRunner(make_app(0.0))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    schema = f"multinode_{uuid.uuid4().hex[:10]}"
    config = load_config("test", environ={}, overrides={
        "data_dir": data_dir, "llm": {"provider": "openai", "base_url": f"http://127.0.0.1:{runner.addresses[0][1]}/v1"},
        "journal": {"provider": "postgres", "dsn": dsn, "schema": schema},
        "ray": {"address": cluster.address, "shards": 2, "restart_wait_s": 120},
    })
    memory = await ClusterMemory(config).open()
    nodes = {name: await handle.node.remote() for name, handle in memory.cluster.shards.items()}
    moved = [name for name, node in nodes.items() if node == worker.node_id]
    users = [f"mn-{i}" for i in range(8)]
    for round_ in range(3):
        for user in users:
            await memory.add(f"round {round_} note for {user}", user_id=user, infer=False)
    cluster.remove_node(worker)
    for round_ in range(3, 6):
        for user in users:
            await memory.add(f"round {round_} note for {user}", user_id=user, infer=False)
    after = {name: await handle.node.remote() for name, handle in memory.cluster.shards.items()}
    histories = {user: [e["seq"] for e in await memory.history(user_id=user)] for user in users}
    await runner.cleanup()
    return {"moved": moved, "nodes_before": nodes, "nodes_after": after, "worker": worker.node_id,
            "histories": histories, "schema": schema}


if __name__ == "__main__":
    print("RESULT " + json.dumps(anyio.run(main, sys.argv[1], sys.argv[2])), flush=True)
