"""Memory of ``memstream serve`` by process, as PSS (``scripts/process_memory.py``): just started,
after seeding memories through the public API, and after a round of searches.

The LLM is the benchmark stand-in over HTTP (as in ``memstream bench``, where mem0ai gets the
same), so no LLM engine process is counted unless ``--llm embedded`` starts the packaged vLLM
one. ``--env KEY=VALUE`` passes settings to the server (e.g. ``MEMSTREAM_RAY__LOG_MONITOR=true``)
and ``--checkout DIR`` runs another checkout's code (the commit before a change), so that
before and after are measured by the same script on the same machine. Each run is stored under
its ``--label`` in ``bench/results/memory.json``; other labels in the file are kept.

    memstream bench-memory --label after [--memories 20000] [--env K=V ...] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from gateway.auth import mint_token
from gateway.client import MemoryClient
from scripts.bench_gateway import QUERIES, SECRET, Server, seed
from scripts.fake_llm_server import stand_in_llm
from scripts.machine import describe, store_labelled_run
from scripts.process_memory import tree_memory


class CheckoutServer(Server):
    """``memstream serve`` from a given checkout (its code first on the path), with extra settings."""

    def __init__(self, data_dir: str, llm_url: str | None, env: dict[str, str], checkout: str | None):
        settings = {"MEMSTREAM_TOKEN_SECRET": SECRET, "MEMSTREAM_LOG__LEVEL": "warning",
                    "MEMSTREAM_GATEWAY__RATE_PER_S": "100000", "MEMSTREAM_GATEWAY__RATE_BURST": "100000"}
        if llm_url is not None:
            settings.update({"MEMSTREAM_LLM__PROVIDER": "openai", "MEMSTREAM_LLM__BASE_URL": llm_url})
        full_env = {**os.environ, **settings, **env}
        cwd = checkout or str(Path(__file__).resolve().parents[1])
        full_env["PYTHONPATH"] = cwd  # Ray's workers import the actors from the driver's path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "serve", "--runtime", "ray", "--port", "0", "--data-dir", data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=cwd)
        self.url = ""


async def searches(url: str, token: str, count: int, users: int) -> dict[str, Any]:
    rng = random.Random(7)
    started = time.perf_counter()
    async with MemoryClient(url, token) as client:
        for _ in range(count):
            await client.search(rng.choice(QUERIES), user_id=f"user-{rng.randrange(users)}", limit=5)
    return {"searches": count, "seconds": round(time.perf_counter() - started, 1)}


def snapshot(server: Server, settle_s: float) -> dict[str, Any]:
    time.sleep(settle_s)  # Ray retires idle workers about a second after they go idle
    return {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], **tree_memory(server.process.pid)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(stand_in_llm(0.2)) if args.llm == "stand-in" else None
        return await measure(args, llm_url)


async def measure(args: argparse.Namespace, llm_url: str | None) -> dict[str, Any]:
    env = dict(item.split("=", 1) for item in args.env)
    server = CheckoutServer(tempfile.mkdtemp(prefix="memstream-bench-memory-"), llm_url, env, args.checkout)
    token = mint_token(SECRET, tenant="default", owners=["*"], rights=["read", "write"], ttl_s=86400)
    result: dict[str, Any] = {"machine": describe(), "llm": args.llm, "env": env,
                              "checkout": commit_of(args.checkout)}
    try:
        url = await anyio.to_thread.run_sync(server.wait_ready)
        result["started"] = await anyio.to_thread.run_sync(snapshot, server, args.settle)
        result["seed"] = await seed(url, token, args.memories, args.users)
        result["seeded"] = await anyio.to_thread.run_sync(snapshot, server, args.settle)
        result["search_round"] = await searches(url, token, args.searches, args.users)
        result["after_searches"] = await anyio.to_thread.run_sync(snapshot, server, args.settle)
    finally:
        server.stop()
    return result


def commit_of(checkout: str | None) -> str:
    where = checkout or str(Path(__file__).resolve().parents[1])
    try:
        head = subprocess.run(["git", "-C", where, "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def headline(run: dict[str, Any]) -> dict[str, Any]:
    """The numbers to compare across labels: total PSS at each point, by group after seeding."""
    return {"started_pss_mb": run["started"]["total_pss_mb"], "seeded_pss_mb": run["seeded"]["total_pss_mb"],
            "after_searches_pss_mb": run["after_searches"]["total_pss_mb"],
            "after_searches_by_group_pss_mb": run["after_searches"]["by_group_pss_mb"],
            "processes": run["after_searches"]["processes"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memstream bench-memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="current")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--searches", type=int, default=500)
    parser.add_argument("--llm", choices=["stand-in", "embedded"], default="stand-in")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--checkout", default=None, help="run `memstream serve` from this checkout")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before each measurement")
    parser.add_argument("--out", default="bench/results/memory.json")
    args = parser.parse_args(argv)
    results = store_labelled_run(args.out, "memory", args.label, anyio.run(run, args), headline)
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
