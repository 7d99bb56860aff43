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
import os
import random
import time
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import anyio

from gateway.client import MemoryClient
from scripts.bench_gateway import QUERIES, Server, seed
from scripts.fake_llm_server import stand_in_llm
from scripts.process_memory import tree_memory
from scripts.served_checkout import CheckoutServer, labelled_parser, measure_served, run_labelled


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
        return {"llm": args.llm, **await measure_served(args, llm_url, "memory", partial(steps, args))}


async def steps(args: argparse.Namespace, server: CheckoutServer, url: str, token: str) -> dict[str, Any]:
    result = {"started": await anyio.to_thread.run_sync(snapshot, server, args.settle),
              "seed": await seed(url, token, args.memories, args.users)}
    result["seeded"] = await anyio.to_thread.run_sync(snapshot, server, args.settle)
    result["search_round"] = await searches(url, token, args.searches, args.users)
    result["after_searches"] = await anyio.to_thread.run_sync(snapshot, server, args.settle)
    return result


def headline(run: dict[str, Any]) -> dict[str, Any]:
    """The numbers to compare across labels: total PSS at each point, by group after seeding."""
    return {"started_pss_mb": run["started"]["total_pss_mb"], "seeded_pss_mb": run["seeded"]["total_pss_mb"],
            "after_searches_pss_mb": run["after_searches"]["total_pss_mb"],
            "after_searches_by_group_pss_mb": run["after_searches"]["by_group_pss_mb"],
            "processes": run["after_searches"]["processes"]}


def main(argv: list[str] | None = None) -> None:
    parser = labelled_parser("memstream bench-memory", __doc__, "bench/results/memory.json")
    parser.add_argument("--searches", type=int, default=500)
    parser.add_argument("--llm", choices=["stand-in", "embedded"], default="stand-in")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before each measurement")
    run_labelled(parser, argv, "memory", run, headline)


if __name__ == "__main__":
    main()
