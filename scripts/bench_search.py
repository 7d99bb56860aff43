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
from functools import partial
from typing import Any

from scripts.bench_gateway import search_levels, seed
from scripts.fake_llm_server import stand_in_llm
from scripts.served_checkout import CheckoutServer, labelled_parser, measure_served, run_labelled


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stand_in_llm(0.2) as llm_url:
        return await measure_served(args, llm_url, "search", partial(steps, args))


async def steps(args: argparse.Namespace, server: CheckoutServer, url: str, token: str) -> dict[str, Any]:
    return {"seed": await seed(url, token, args.memories, args.users),
            **await search_levels(server, url, token, args)}


def headline(run_result: dict[str, Any]) -> dict[str, Any]:
    return {f"{s['clients']}_clients": {"p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
                                         "searches_per_s": s["searches_per_s"], "load_average_1": s["load_average_1"]}
            for s in run_result["search"]}


def main(argv: list[str] | None = None) -> None:
    parser = labelled_parser("memstream bench-search", __doc__, "bench/results/search.json")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--searches", type=int, default=640, help="searches per concurrency level")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    run_labelled(parser, argv, "search", run, headline)


if __name__ == "__main__":
    main()
