"""Graph memory benchmark (no Ray, no network): what graph memory adds to an ``add`` turn, and how
fast relations are searched, with the graph holding 10k entities (100 owners x 100 by default).

The LLM is an in-process stand-in that answers by rule (the rules of scripts/fake_llm_server.py)
after a fixed delay: ``--llm-delay-ms 0`` (instant) isolates memstream's own overhead - graph
extraction parsing, entity resolution against the graph, planning, embedding names and
relations, journaling and the LadybugDB write - and a non-zero delay shows what a user sees
when the relations call runs concurrently with the facts call. Everything else is real:
LadybugDB, Qdrant Edge, SQLite journal, the MiniLM embedder (onnxruntime).

The graph is filled through the real write path (``add``, one turn naming many contacts).
Writes ``bench/results/graph.json``.

    memstream bench-graph [--entities 10000] [--owners 100] [--turns 60] [--llm-delay-ms 0 200]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec

from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from runtime.model import Scope
from scripts.fake_llm_server import answer
from scripts.machine import describe, percentile, write_results

CITIES = ["Berlin", "Paris", "Lisbon", "Oslo", "Rome", "Tokyo", "Lima", "Cairo", "Quebec", "Seoul"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises"]
HOBBIES = ["jazz", "chess", "sailing", "pottery", "climbing", "baking", "opera", "cycling"]
FIRST = ["Anna", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ivo", "Jonas", "Kaia", "Luca",
         "Mira", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara"]
SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "tu", "vo", "zel", "bri", "dan", "fen", "gor", "hal", "jin", "kor", "lum",
             "nar", "pel", "quo", "rus", "tam", "vik", "wen", "yar"]
QUERIES = ["where does the user live?", "who is the employer?", "what hobbies?", "which people do they know?",
           "what music do they like?", "is there a company in Paris?"]


class RuleLLM:
    """Structured answers by rule after a fixed delay (0 = instant): a stand-in, not a language model."""

    def __init__(self, delay_ms: float):
        self.delay_s = delay_ms / 1000
        self.calls = 0

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        self.calls += 1
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        return answer({"messages": messages, "response_format": {"json_schema": {"schema": schema}}})

    async def close(self) -> None:
        return None


def summary(values_ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(values_ms, 50), 3), "p99_ms": round(percentile(values_ms, 99), 3),
            "mean_ms": round(sum(values_ms) / len(values_ms), 3), "n": len(values_ms)}


def contacts(rng: random.Random, count: int) -> list[str]:
    """Distinct made-up people ("Mira Vorenlum"): MiniLM puts no two of them above the entity match
    threshold (max 0.88 measured for 100), so each one is an entity of its own."""
    names: dict[str, None] = {}
    while len(names) < count:
        names[f"{rng.choice(FIRST)} {''.join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()}"] = None
    return list(names)


def turn(rng: random.Random) -> str:
    return (f"I live in {rng.choice(CITIES)}. I work at {rng.choice(COMPANIES)} and I like "
            f"{rng.choice(HOBBIES)}")


def configured(base: Config, *, graph: bool, max_relations: int = 4) -> Config:
    return load_config(overrides={
        "data_dir": base.data_dir, "graph": {"enabled": graph, "max_relations": max_relations},
        "memory": {"max_facts": 4}, "embedder": {"threads": 1}, "log": {"level": "warning"},
    }, environ={})


async def fill(base: Config, embedder: Any, entities: int, owners: int) -> float:
    """Each owner says it knows ``entities/owners`` people (the owner is an entity too), 50 per turn,
    through ``add``."""
    per_owner = entities // owners - 1
    config = configured(base, graph=True, max_relations=50)
    rng = random.Random(5)
    started = time.perf_counter()
    async with AsyncMemory(config, llm=RuleLLM(0), embedder=embedder) as memory:
        for o in range(owners):
            people = contacts(rng, per_owner)
            for first in range(0, per_owner, 50):
                await memory.add(". ".join(f"I know {n}" for n in people[first:first + 50]), user_id=f"owner-{o}")
            if o % 10 == 9:
                print(f"  filled {o + 1}/{owners} owners", file=sys.stderr, flush=True)
    return time.perf_counter() - started


async def count_entities(base: Config, embedder: Any, owners: int) -> int:
    config = configured(base, graph=True)
    async with AsyncMemory(config, llm=RuleLLM(0), embedder=embedder) as memory:
        counted = sum([(await memory.graph.count(config.tenant, f"user:owner-{o}"))[0] for o in range(owners)])
    print(f"  graph holds {counted} entities", file=sys.stderr, flush=True)
    return counted


async def add_turns(base: Config, embedder: Any, *, graph: bool, delay_ms: float, turns: int, owners: int,
                    seed: int) -> dict:
    """The same turns on a fresh copy of the filled stores, so graph-on and graph-off do the same memory work."""
    rng = random.Random(seed)
    copy = Path(base.data_dir).with_name(f"run-{'on' if graph else 'off'}-{delay_ms:g}")
    shutil.copytree(base.data_dir, copy)
    config = configured(msgspec.structs.replace(base, data_dir=str(copy)), graph=graph)
    async with AsyncMemory(config, llm=RuleLLM(delay_ms), embedder=embedder) as memory:
        totals: list[float] = []
        stages: dict[str, list[float]] = {}
        for i in range(turns):
            started = time.perf_counter()
            outcome = await memory.add_detailed(turn(rng), user_id=f"owner-{rng.randrange(owners)}")
            totals.append((time.perf_counter() - started) * 1000)
            for stage, ms in outcome.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            if i == 0:
                relations = outcome.result.get("relations", [])
                print(f"  first turn: {len(outcome.result['results'])} memory changes, {len(relations)} "
                      "relation changes", file=sys.stderr, flush=True)
    shutil.rmtree(copy, ignore_errors=True)
    return {"total": summary(totals), "stages": {k: summary(v) for k, v in stages.items()}}


async def search_latency(base: Config, embedder: Any, queries: int, owners: int) -> dict:
    """``search`` end to end with graph memory off and on (same memories), and the graph store's
    relation search alone (query vector given)."""
    out: dict[str, Any] = {}
    for graph in (False, True):
        rng = random.Random(11)
        config = configured(base, graph=graph)
        async with AsyncMemory(config, llm=RuleLLM(0), embedder=embedder) as memory:
            vectors = await memory.embedder.embed(QUERIES)
            end_to_end, graph_only, returned = [], [], []
            for i in range(queries):
                user = f"owner-{rng.randrange(owners)}"
                started = time.perf_counter()
                found = await memory.search(QUERIES[i % len(QUERIES)], user_id=user, limit=10)
                end_to_end.append((time.perf_counter() - started) * 1000)
                if not graph:
                    continue
                returned.append(len(found["relations"]))
                started = time.perf_counter()
                await memory.graph.search_relations(config.tenant, f"user:{user}", vectors[i % len(QUERIES)],
                                                    scope=Scope(user_id=user), limit=10)
                graph_only.append((time.perf_counter() - started) * 1000)
        out[f"search_end_to_end_graph_{'on' if graph else 'off'}"] = summary(end_to_end)
    out["relation_search_graph_store_only"] = summary(graph_only)
    out["mean_relations_returned"] = round(sum(returned) / len(returned), 2)
    return out


async def run(args: argparse.Namespace) -> dict:
    from runtime.embedders.onnx import OnnxEmbedder

    embedder = OnnxEmbedder("all-MiniLM-L6-v2", threads=1)
    workdir = Path(tempfile.mkdtemp(prefix="memstream-bench-graph-"))
    base = load_config(overrides={"data_dir": str(workdir / "data")}, environ={})
    results: dict = {"machine": describe(), "graph_store": "ladybug (embedded)", "entities": args.entities,
                     "owners": args.owners, "llm": "in-process rule-based stand-in (scripts/fake_llm_server.py "
                     "rules) answering after a fixed delay; 0 ms isolates memstream's own overhead",
                     "add_overhead": {}}
    try:
        print(f"filling the graph to {args.entities} entities over {args.owners} owners", file=sys.stderr)
        results["fill_seconds"] = round(await fill(base, embedder, args.entities, args.owners), 1)
        results["entities_stored"] = await count_entities(base, embedder, args.owners)
        for delay in args.llm_delay_ms:
            off = await add_turns(base, embedder, graph=False, delay_ms=delay, turns=args.turns, owners=args.owners,
                                  seed=3)
            on = await add_turns(base, embedder, graph=True, delay_ms=delay, turns=args.turns, owners=args.owners,
                                 seed=3)
            results["add_overhead"][f"llm_delay_{delay:g}ms"] = {
                "graph_off": off, "graph_on": on,
                "overhead_p50_ms": round(on["total"]["p50_ms"] - off["total"]["p50_ms"], 3),
                "overhead_mean_ms": round(on["total"]["mean_ms"] - off["total"]["mean_ms"], 3),
            }
            print(f"  llm delay {delay} ms: off p50 {off['total']['p50_ms']} ms, on p50 {on['total']['p50_ms']} ms",
                  file=sys.stderr, flush=True)
        results["search"] = await search_latency(base, embedder, args.queries, args.owners)
        print(f"  search: {json.dumps(results['search'])}", file=sys.stderr, flush=True)
    finally:
        await embedder.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="memstream graph memory benchmark")
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--owners", type=int, default=100)
    parser.add_argument("--turns", type=int, default=60, help="add turns measured per mode")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--llm-delay-ms", type=float, nargs="+", default=[0.0, 200.0])
    parser.add_argument("--out", default="bench/results/graph.json")
    args = parser.parse_args(argv)
    write_results(anyio.run(run, args), args.out)


if __name__ == "__main__":
    main()
