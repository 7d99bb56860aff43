"""Search over the wire, before and after a change: ``memstream serve`` from a given checkout
(``--checkout``, e.g. the commit before the change) or this one, seeded with the same memories,
then the search levels of ``memstream bench-gateway`` (with their per-hop breakdown where the
server reports hops) and a py-spy profile under the most clients. Each run is stored under its
``--label`` in ``bench/results/search.json`` beside the other labels, with the load average, so
that runs made one after the other on the same machine can be compared.

    memstream bench-search --label before --checkout DIR
    memstream bench-search --label after [--memories 20000] [--clients 1 16 64] [--env K=V ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

import anyio

from gateway.auth import mint_token
from scripts.bench_gateway import SECRET, search_levels, seed
from scripts.bench_memory import CheckoutServer, commit_of
from scripts.fake_llm_server import stand_in_llm
from scripts.machine import describe, store_labelled_run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stand_in_llm(0.2) as llm_url:
        return await measure(args, llm_url)


async def measure(args: argparse.Namespace, llm_url: str) -> dict[str, Any]:
    env = dict(item.split("=", 1) for item in args.env)
    server = CheckoutServer(tempfile.mkdtemp(prefix="memstream-bench-search-"), llm_url, env, args.checkout)
    token = mint_token(SECRET, tenant="default", owners=["*"], rights=["read", "write"], ttl_s=86400)
    result: dict[str, Any] = {"machine": describe(), "env": env, "checkout": commit_of(args.checkout)}
    try:
        url = await anyio.to_thread.run_sync(server.wait_ready)
        result["seed"] = await seed(url, token, args.memories, args.users)
        result.update(await search_levels(server, url, token, args))
    finally:
        server.stop()
    return result


def headline(run_result: dict[str, Any]) -> dict[str, Any]:
    return {f"{s['clients']}_clients": {"p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
                                         "searches_per_s": s["searches_per_s"], "load_average_1": s["load_average_1"]}
            for s in run_result["search"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memstream bench-search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="current")
    parser.add_argument("--checkout", default=None, help="run `memstream serve` from this checkout")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--searches", type=int, default=640, help="searches per concurrency level")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="bench/results/search.json")
    args = parser.parse_args(argv)
    results = store_labelled_run(args.out, "search", args.label, anyio.run(run, args), headline)
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
