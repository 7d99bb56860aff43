"""Engine benchmark (no Ray, no network): search latency at 1k and 20k memories over 100 users,
and add latency per turn split into extraction / embedding / store / journal.

Memories are written through the real write path (``add(infer=False)``, one batch of turns per
user). Adds with inference use the embedded vLLM engine by default, or ``--llm fake`` for the
benchmark stand-in server at a fixed latency. Writes ``bench/results/engine.json``.

    memstream bench-engine [--sizes 1000 20000] [--users 100] [--queries 300] [--llm vllm|fake]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import anyio

from runtime.config import load_config
from runtime.engine import AsyncMemory
from runtime.model import Scope
from scripts.machine import describe, percentile, write_results

TOPICS = ["hiking", "cooking", "jazz", "chess", "gardening", "python", "travel", "football", "painting", "movies",
          "coffee", "tea", "cats", "dogs", "running", "cycling", "opera", "baking", "sailing", "astronomy"]
PLACES = ["Berlin", "Paris", "Lisbon", "Oslo", "Rome", "Tokyo", "Lima", "Cairo", "Quebec", "Seoul"]
TURNS = [
    "I'm allergic to peanuts, please remember that", "I work as a data engineer at a bank",
    "My daughter Emma starts school in September", "I play the cello in a community orchestra",
    "We adopted a beagle called Max", "I don't drink coffee anymore, only green tea",
    "I'm training for the Berlin marathon in October", "My favourite author is Ursula K. Le Guin",
]


def memory_text(rng: random.Random, i: int) -> str:
    return f"Likes {rng.choice(TOPICS)} and visited {rng.choice(PLACES)} in {1990 + i % 35} (note {i})"


def summary(values_ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(values_ms, 50), 3), "p99_ms": round(percentile(values_ms, 99), 3),
            "mean_ms": round(sum(values_ms) / len(values_ms), 3), "n": len(values_ms)}


async def fill(memory: AsyncMemory, users: int, total: int, rng: random.Random, start: int) -> float:
    per_user = (total - start) // users
    started = time.perf_counter()
    for u in range(users):
        for offset in range(0, per_user, 200):
            batch = [{"role": "user", "content": memory_text(rng, start + u * per_user + offset + k)}
                     for k in range(min(200, per_user - offset))]
            await memory.add(batch, user_id=f"user-{u}", infer=False)
        if u % 10 == 9:
            print(f"  filled {u + 1}/{users} users", file=sys.stderr, flush=True)
    return time.perf_counter() - started


async def search_latency(memory: AsyncMemory, users: int, queries: int, rng: random.Random) -> dict:
    total, store_only = [], []
    vectors = await memory.embedder.embed([f"who likes {rng.choice(TOPICS)}?" for _ in range(queries)])
    for i in range(queries):
        user = f"user-{rng.randrange(users)}"
        started = time.perf_counter()
        await memory.search(f"who likes {TOPICS[i % len(TOPICS)]}?", user_id=user, limit=10)
        total.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await memory.vectors.search(vectors[i], tenant="default", scope=Scope(user_id=user), filters=None, limit=10)
        store_only.append((time.perf_counter() - started) * 1000)
    return {"search_end_to_end": summary(total), "vector_store_only": summary(store_only)}


async def add_latency(config, turns: int, llm_kind: str, latency_ms: float) -> dict:
    runner = None
    if llm_kind == "fake":
        from aiohttp import web

        from scripts.fake_llm_server import make_app

        runner = web.AppRunner(make_app(latency_ms / 1000))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        config = load_config(overrides={**_overrides(config), "llm": {"provider": "openai",
                                                                       "base_url": f"http://127.0.0.1:{port}/v1"}})
    try:
        async with AsyncMemory(config) as memory:
            await memory._get_llm()  # engine start is not part of a turn
            stages: dict[str, list[float]] = {}
            totals = []
            for i in range(turns):
                started = time.perf_counter()
                outcome = await memory.add_detailed(TURNS[i % len(TURNS)], user_id=f"adder-{i % 4}")
                totals.append((time.perf_counter() - started) * 1000)
                for stage, ms in outcome.timings_ms.items():
                    stages.setdefault(stage, []).append(ms)
                print(f"  add {i + 1}/{turns}: {totals[-1]:.0f} ms", file=sys.stderr, flush=True)
            return {"llm": llm_kind, "turns": turns, "total": summary(totals),
                    "stages": {k: summary(v) for k, v in stages.items()}}
    finally:
        if runner is not None:
            await runner.cleanup()


def _overrides(config) -> dict:
    return {"data_dir": config.data_dir, "memory": {"max_facts": config.memory.max_facts}}


async def run(args) -> dict:
    rng = random.Random(7)
    workdir = Path(tempfile.mkdtemp(prefix="memstream-bench-"))
    results: dict = {"machine": describe(), "users": args.users, "search": {}, "fill_seconds": {}}
    try:
        config = load_config(args.config, overrides={"data_dir": str(workdir / "data")})
        async with AsyncMemory(config) as memory:
            filled = 0
            for size in sorted(args.sizes):
                print(f"filling to {size} memories", file=sys.stderr, flush=True)
                results["fill_seconds"][str(size)] = round(await fill(memory, args.users, size, rng, filled), 1)
                filled = size
                results["search"][str(size)] = await search_latency(memory, args.users, args.queries, rng)
                print(f"  search at {size}: {results['search'][str(size)]}", file=sys.stderr, flush=True)
        if args.add_turns:
            add_config = load_config(args.config, overrides={"data_dir": str(workdir / "adds")})
            results["add"] = await add_latency(add_config, args.add_turns, args.llm, args.latency_ms)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="memstream engine benchmark")
    parser.add_argument("--config", default="local")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--add-turns", type=int, default=16)
    parser.add_argument("--llm", choices=["vllm", "fake"], default="vllm")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="fake LLM latency per call")
    parser.add_argument("--out", default="bench/results/engine.json")
    args = parser.parse_args(argv)
    write_results(anyio.run(run, args), args.out)


if __name__ == "__main__":
    main()
