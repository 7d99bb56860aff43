"""Run by test_multinode.py in a process of its own (it needs its own Ray cluster):
three Ray nodes on this machine running the cluster preset (configs/cluster.yaml) with the journal
on PostgreSQL; only what cannot run here is overridden (Qdrant server -> Qdrant Edge, Memgraph
-> off, vLLM on GPUs -> the stand-in LLM server, CUDA embedder -> ONNX on CPU, CPU reservations).
The head node declares two (fake) GPUs so the resource policy's GPU requests are placed for
real - the actors are created but never start vLLM. The shards may only run on the two worker
nodes (``ray.shard_resources``; each worker has room for both), so some worker hosts a shard
whatever SPREAD decides. Then: remove a worker that hosts a shard and check that its owners go
on, on the other worker, with gapless history."""

from __future__ import annotations

import json
import sys
import uuid

import anyio
import msgspec
import ray
from aiohttp import web
from ray.cluster_utils import Cluster

from actors.client import ClusterMemory
from actors.cluster import start_ray
from actors.models import ExtractorActor
from actors.placement import remove_placement_groups, start_replicas
from actors.resources import ClusterShape, extractor_plan
from runtime.config import load_config
from scripts.fake_llm_server import make_app

SHARD_SLOT = "memstream_shard"


async def main(data_dir: str, dsn: str) -> dict:
    # the GPUs are the head's; the shards are the workers' (the head cannot be removed)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 2})
    try:
        return await check(cluster, data_dir, dsn)
    finally:
        ray.shutdown()
        cluster.shutdown()  # also removes Ray's note of this cluster, which a later ray.init would join


async def check(cluster: Cluster, data_dir: str, dsn: str) -> dict:
    workers = [cluster.add_node(num_cpus=1, resources={SHARD_SLOT: 2}) for _ in range(2)]
    cluster.wait_for_nodes()
    runner = web.AppRunner(make_app(0.0))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    schema = f"multinode_{uuid.uuid4().hex[:10]}"
    config = load_config("cluster", environ={}, overrides={
        "data_dir": data_dir, "llm": {"provider": "openai", "base_url": f"http://127.0.0.1:{runner.addresses[0][1]}/v1"},
        "embedder": {"backend": "onnx", "device": "cpu", "precision": "float32", "batch_size": 64},
        "vector_store": {"provider": "qdrant_edge"},
        "graph": {"enabled": False}, "graph_store": {"provider": "ladybug"},
        "journal": {"dsn": dsn, "schema": schema},  # provider postgres: the preset's
        "ray": {"address": cluster.address, "shards": 2, "restart_wait_s": 120, "extractor_replicas": 2,
                "shard_resources": {SHARD_SLOT: 1},
                "llm_calls": "extractor",
                "extractor_cpus": 0, "embedder_cpus": 0},
        "log": {"json": False, "level": "warning"},
    })
    start_ray(config)  # joins the two-node cluster
    placements = await gpu_placements(config)
    memory = await ClusterMemory(config).open()
    nodes = {name: await handle.node.remote() for name, handle in memory.cluster.shards.items()}
    worker = next(w for w in workers if w.node_id == nodes[min(nodes)])  # hosts a shard, by construction
    moved = [name for name, node in nodes.items() if node == worker.node_id]
    users = [f"mn-{i}" for i in range(8)]
    for round_ in range(3):
        for user in users:
            await memory.add(f"round {round_} note for {user}", user_id=user, infer=False)
    for user in users[:4]:  # through the extractor replicas (the stand-in LLM)
        await memory.add(f"I live in city {user} and I like tea", user_id=f"{user}-infer")
    extractor_calls = [r["calls"] for r in (await memory.cluster.stats())["replicas"]["extractor"]]
    cluster.remove_node(worker)
    for round_ in range(3, 6):
        for user in users:
            await memory.add(f"round {round_} note for {user}", user_id=user, infer=False)
    after = {name: await handle.node.remote() for name, handle in memory.cluster.shards.items()}
    histories = {user: [e["seq"] for e in await memory.history(user_id=user)] for user in users}
    await runner.cleanup()
    return {"moved": moved, "nodes_before": nodes, "nodes_after": after, "worker": worker.node_id,
            "histories": histories, "schema": schema, "placements": placements, "extractor_calls": extractor_calls,
            "plans": {k: msgspec.to_builtins(v) for k, v in memory.cluster.plans.items()}}


async def gpu_placements(config) -> dict:
    """A tensor-parallel-2 vLLM extractor as the resource policy places it, with each executor backend."""
    shape = ClusterShape.from_ray()
    gpu_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU"))
    out = {"shape": list(shape.node_gpus)}
    for backend in ("mp", "ray"):
        llm = {"provider": "vllm", "device": "cuda", "tensor_parallel_size": 2, "distributed_executor_backend": backend}
        vllm_config = load_config("cluster", environ={}, overrides={"llm": llm})
        plan = msgspec.structs.replace(extractor_plan(vllm_config, shape), kind=f"placement-{backend}", replicas=1,
                                       options={**extractor_plan(vllm_config, shape).options, "num_cpus": 0})
        if plan.bundles:
            plan = msgspec.structs.replace(plan, bundles=[{"GPU": 1.0} for _ in plan.bundles])
        [handle] = await start_replicas(ExtractorActor, plan, config.ray.namespace,
                                        (msgspec.to_builtins(vllm_config.llm),), ready_s=60)
        placed = await handle.placement.remote()  # never warmed: vLLM does not start
        placed["on_gpu_node"] = placed["node"] == gpu_node
        out[backend] = placed
        ray.kill(handle, no_restart=True)
        remove_placement_groups(plan, config.ray.namespace)
    return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(anyio.run(main, sys.argv[1], sys.argv[2])), flush=True)
