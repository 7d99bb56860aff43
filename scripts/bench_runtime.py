"""Actor-runtime benchmark: add throughput for 1 / 10 / 100 concurrent users against an
OpenAI-compatible LLM with a fixed latency per call (the benchmark stand-in server), next to
the LLM-bound ceiling users ÷ (LLM calls per turn × latency); runtime CPU per turn; embedder
batch sizes reached; batch-ingestion turns/s. Writes ``bench/results/runtime.json``.

    memstream bench-runtime [--users 1 10 100] [--turns 3] [--latency-ms 200] [--ingest-turns 400]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil
from aiohttp import web

from actors.client import ClusterMemory
from actors.ingest import ingest
from runtime.config import load_config
from scripts.fake_llm_server import make_app
from scripts.machine import describe, write_results

TOPICS = ["sailing", "chess", "opera", "baking", "tennis", "poetry", "cycling", "pottery", "jazz", "hiking"]


def cpu_seconds() -> float:
    """CPU time of this process and all its descendants (Ray's GCS, raylet and workers included)."""
    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


async def add_round(memory: ClusterMemory, users: int, turns: int, tag: str, calls: dict) -> dict:
    before_calls, before_cpu = calls["n"], cpu_seconds()
    started = time.perf_counter()

    async def user(u: int) -> None:
        for t in range(turns):
            topic = TOPICS[(u + t) % len(TOPICS)]
            await memory.add(f"I started {topic} lessons in week {t} and I practice {topic} with friend {u}",
                             user_id=f"{tag}-{u}")

    async with anyio.create_task_group() as tg:
        for u in range(users):
            tg.start_soon(user, u)
    seconds = time.perf_counter() - started
    done = users * turns
    llm_calls = calls["n"] - before_calls
    return {"users": users, "turns": done, "seconds": round(seconds, 2), "turns_per_s": round(done / seconds, 2),
            "llm_calls_per_turn": round(llm_calls / done, 2),
            "cpu_ms_per_turn": round((cpu_seconds() - before_cpu) * 1000 / done, 1)}


async def run(args: argparse.Namespace) -> dict:
    app = make_app(args.latency_ms / 1000)
    calls = {"n": 0}

    @web.middleware
    async def count(request: web.Request, handler):
        if request.path.endswith("/chat/completions"):
            calls["n"] += 1
        return await handler(request)

    app.middlewares.append(count)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    workdir = Path(tempfile.mkdtemp(prefix="memstream-bench-runtime-"))
    results: dict = {"machine": describe(), "llm_latency_ms": args.latency_ms, "shards": args.shards, "adds": []}
    try:
        config = load_config("local", overrides={
            "data_dir": str(workdir), "llm": {"provider": "openai", "base_url": f"http://127.0.0.1:{port}/v1"},
            "ray": {"shards": args.shards}, "memory": {"mailbox_capacity": 1024},
        })
        memory = await ClusterMemory(config).open()
        for users in args.users:
            row = await add_round(memory, users, args.turns, f"u{users}", calls)
            ceiling = users / (row["llm_calls_per_turn"] * args.latency_ms / 1000)
            row["ceiling_turns_per_s"] = round(ceiling, 2)
            row["share_of_ceiling"] = round(row["turns_per_s"] / ceiling, 3)
            results["adds"].append(row)
            print(f"  {users} users: {row}", file=sys.stderr, flush=True)
        stats = await memory.cluster.stats()
        results["embedder_batches"] = stats["embedder"]
        results["llm"] = stats["llm"]
        if args.ingest_turns:
            path = workdir / "ingest.jsonl"
            with path.open("w") as out:
                for i in range(args.ingest_turns):
                    topic = TOPICS[i % len(TOPICS)]
                    out.write(json.dumps({"user_id": f"ingest-{i % 50}", "id": f"bench-{i}",
                                          "content": f"I like {topic} and I visited place {i}"}) + "\n")
            summary = await ingest(memory, path, progress=False)
            results["ingest"] = {"turns": summary.turns, "seconds": summary.seconds,
                                 "turns_per_s": round(summary.turns_per_s, 2), "failures": len(summary.failures)}
            print(f"  ingest: {results['ingest']}", file=sys.stderr, flush=True)
        await memory.cluster.stop()
    finally:
        await runner.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="memstream actor-runtime benchmark")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--turns", type=int, default=3, help="turns per user")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--ingest-turns", type=int, default=400)
    parser.add_argument("--out", default="bench/results/runtime.json")
    args = parser.parse_args(argv)
    write_results(anyio.run(run, args), args.out)


if __name__ == "__main__":
    main()
