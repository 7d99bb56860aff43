"""Actor-runtime benchmark: add throughput for 1 / 10 / 100 concurrent users against an
OpenAI-compatible LLM with a fixed latency per call (the benchmark stand-in server, run as a
process of its own like a real LLM server), next to the LLM-bound ceiling
users ÷ (LLM calls per turn × latency); CPU per turn by process (the runtime's, and the
stand-in's apart); per-stage latency of the adds; embedder batch sizes reached; batch-ingestion
turns/s. Writes ``bench/results/runtime.json``.

    memstream bench-runtime [--users 1 10 100] [--turns 10] [--latency-ms 200] [--ingest-turns 400]
                            [--set ray.embedder_replicas=2 ...]

Each user adds its turns one after another (a chat user waits for the answer), all users at
once; every turn is distinct, so nothing is served from a cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import psutil
import yaml

from actors.client import ClusterMemory
from actors.ingest import ingest
from runtime.config import load_config
from scripts.machine import describe, percentile, write_results

TOPICS = ["sailing", "chess", "opera", "baking", "tennis", "poetry", "cycling", "pottery", "jazz", "hiking"]
TARGET_USERS, TARGET_SHARE = 100, 0.70  # the target: at 100 users, 70% of the LLM-bound ceiling
_RAY_SERVICES = ("raylet", "gcs_server", "log_monitor", "dashboard", "monitor.py", "runtime_env", "DashboardAgent")


def _label(proc: psutil.Process, driver: int, stand_in: int) -> str:
    if proc.pid == driver:
        return "driver"
    if proc.pid == stand_in:
        return "stand-in LLM server"
    try:
        command = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    for actor in ("ShardActor", "EmbedderActor", "ExtractorActor"):
        if actor in command:
            return actor
    if any(service in command for service in _RAY_SERVICES):
        return "ray services"
    return "ray idle workers" if "default_worker" in command else "other"


def cpu_by_process(stand_in: int) -> dict[tuple[int, str], float]:
    """CPU seconds of this process and all its descendants (Ray's GCS, raylet, workers; the stand-in)."""
    me = psutil.Process()
    out: dict[tuple[int, str], float] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            out[(proc.pid, _label(proc, me.pid, stand_in))] = times.user + times.system
        except psutil.Error:
            continue
    return out


def cpu_delta(before: dict[tuple[int, str], float], after: dict[tuple[int, str], float]) -> dict[str, float]:
    per: dict[str, float] = {}
    for key, seconds in after.items():
        per[key[1]] = per.get(key[1], 0.0) + seconds - before.get(key, 0.0)
    return per


def merge_stage_times(shards: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per-stage latency over every shard: count-weighted mean, the worst shard's p50/p99/max."""
    merged: dict[str, dict[str, float]] = {}
    for shard in shards:
        for stage, s in shard.get("add_ms", {}).items():
            m = merged.setdefault(stage, {"count": 0, "mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0})
            total = m["mean"] * m["count"] + s["mean"] * s["count"]
            m["count"] += s["count"]
            m["mean"] = round(total / m["count"], 2)
            for key in ("p50", "p99", "max"):
                m[key] = max(m[key], s[key])
    return merged


async def llm_calls(client: aiohttp.ClientSession, url: str) -> int:
    async with client.get(url) as response:
        return int((await response.json())["by_system"].get("memstream", 0))


async def add_round(memory: ClusterMemory, users: int, turns: int, tag: str, stats_url: str,
                    client: aiohttp.ClientSession, stand_in: int, latency_s: float) -> dict[str, Any]:
    for shard in memory.cluster.shards.values():
        await shard.clear_stats.remote()
    before_calls, before_cpu = await llm_calls(client, stats_url), cpu_by_process(stand_in)
    started = time.perf_counter()
    latencies: list[float] = []

    async def user(u: int) -> None:
        for t in range(turns):
            topic = TOPICS[(u + t) % len(TOPICS)]
            sent = time.perf_counter()
            await memory.add(f"I started {topic} lessons in week {t} of year {u} and I practice {topic} "
                             f"with friend {u}-{t}", user_id=f"{tag}-{u}")
            latencies.append((time.perf_counter() - sent) * 1000)

    async with anyio.create_task_group() as tg:
        for u in range(users):
            tg.start_soon(user, u)
    seconds = time.perf_counter() - started
    done = users * turns
    calls = (await llm_calls(client, stats_url)) - before_calls
    cpu = cpu_delta(before_cpu, cpu_by_process(stand_in))
    stand_in_cpu = cpu.pop("stand-in LLM server", 0.0)
    calls_per_turn = calls / done
    ceiling = users / (calls_per_turn * latency_s)
    shards = [await shard.stats.remote() for shard in memory.cluster.shards.values()]
    return {
        "users": users, "turns": done, "seconds": round(seconds, 2), "turns_per_s": round(done / seconds, 2),
        "llm_calls_per_turn": round(calls_per_turn, 2), "ceiling_turns_per_s": round(ceiling, 2),
        "share_of_ceiling": round(done / seconds / ceiling, 3),
        "cpu_ms_per_turn": round(sum(cpu.values()) * 1000 / done, 2),
        "cpu_ms_per_turn_by_process": {k: round(v * 1000 / done, 2) for k, v in sorted(cpu.items(), key=lambda x: -x[1])
                                       if v > 0.0005},
        "stand_in_cpu_ms_per_turn": round(stand_in_cpu * 1000 / done, 2),
        "cores_busy": round((sum(cpu.values()) + stand_in_cpu) / seconds, 2),
        "add_ms": {"mean": round(sum(latencies) / len(latencies), 1), "p50": round(percentile(latencies, 50), 1),
                   "p99": round(percentile(latencies, 99), 1)},  # as the caller sees it, Ray hops included
        "add_stage_ms": merge_stage_times(shards),  # inside the shard
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_stand_in(latency_ms: float) -> tuple[subprocess.Popen, str]:
    """The stand-in LLM server in a process of its own, as a real LLM server would be."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "scripts.fake_llm_server", "--port", str(port),
                             "--latency-ms", str(latency_ms)], stdout=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


async def _start_stand_in(latency_ms: float) -> tuple[subprocess.Popen, str]:
    proc, base = _spawn_stand_in(latency_ms)
    async with aiohttp.ClientSession() as client:
        for _ in range(200):
            try:
                async with client.get(f"{base}/stats"):
                    return proc, base
            except aiohttp.ClientError:
                await anyio.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stand-in LLM server did not start")


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``section.field=value`` pairs (values read as YAML) → a config override tree."""
    tree: dict[str, Any] = {}
    for item in items:
        path, _, value = item.partition("=")
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stand_in, base = await _start_stand_in(args.latency_ms)
    workdir = Path(tempfile.mkdtemp(prefix="memstream-bench-runtime-"))
    settings = parse_settings(args.set)
    results: dict[str, Any] = {"machine": describe(), "llm_latency_ms": args.latency_ms, "turns_per_user": args.turns,
                               "settings": settings, "adds": []}
    try:
        config = load_config("local", overrides=_merge({
            "data_dir": str(workdir), "llm": {"provider": "openai", "base_url": f"{base}/v1"},
            "ray": {"shards": args.shards}, "memory": {"mailbox_capacity": 1024},
        }, settings))
        results["shards"] = config.ray.shards
        results["embedder"] = {"backend": getattr(config.embedder, "backend", None),
                               "quantize": getattr(config.embedder, "quantize", None),
                               "replicas": config.ray.embedder_replicas}
        memory = await ClusterMemory(config).open()
        async with aiohttp.ClientSession() as client:
            for users in args.users:
                row = await add_round(memory, users, args.turns, f"u{users}", f"{base}/stats", client, stand_in.pid,
                                      args.latency_ms / 1000)
                results["adds"].append(row)
                print(f"  {users} users: {row['turns_per_s']} turns/s = {row['share_of_ceiling']:.0%} of "
                      f"{row['ceiling_turns_per_s']}; {row['cpu_ms_per_turn']} ms CPU per turn", file=sys.stderr,
                      flush=True)
        stats = await memory.cluster.stats()
        results["embedder_batches"] = stats["embedder"]
        results["llm"] = stats["llm"]
        at_target = next((r for r in results["adds"] if r["users"] == TARGET_USERS), None)
        if at_target and args.latency_ms == 200:
            results["target"] = {"users": TARGET_USERS, "llm_latency_ms": 200, "share_needed": TARGET_SHARE,
                                 "share": at_target["share_of_ceiling"],
                                 "met": at_target["share_of_ceiling"] >= TARGET_SHARE}
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
        stand_in.terminate()
        stand_in.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="memstream actor-runtime benchmark")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--turns", type=int, default=10, help="turns per user")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--ingest-turns", type=int, default=400)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="a config override, e.g. ray.embedder_replicas=2 (repeatable)")
    parser.add_argument("--out", default="bench/results/runtime.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    write_results(anyio.run(run, args), args.out)


if __name__ == "__main__":
    main()
