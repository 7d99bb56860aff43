"""Scenario (1) of ``memstream bench``: search latency p50/p99 at each store size, 100 users.

Both systems store the same memories (``bench_gateway.seed_item``): the first ones through the
public one-memory ``add(infer=False)``, the rest through each system's batch path, then answer
the same (query, user) pairs at each size, one client, limit 5. At the largest size memstream also
answers each pair in every search mode (dense, sparse, hybrid), the modes taking turns, so that
hybrid's extra cost over dense is measured on the same queries at the same moment."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from typing import Any

from scripts.compare.report import bars, fmt, latency_stats, ratio, rotated, times

MODES = ("dense", "sparse", "hybrid")
HYBRID_EXTRA_P50_MS = 1.0  # hybrid's p50 may exceed dense's by this much at the largest size
QUERIES = ["what sport does the user like", "favourite food", "hobbies on weekends", "music taste",
           "where did they travel", "pets and animals", "work and career", "books they read"]


def search_plan(n: int, users: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(rng.choice(QUERIES), f"user-{rng.randrange(users)}") for _ in range(n)]


async def top_up(url: str, token: str, items: list[tuple[str, str]], tag: str, batch: int = 64,
                 concurrency: int = 16) -> dict:
    """memstream's public batch path: ``add([...], infer=False)`` stores one memory per message and
    embeds them in one batch."""
    import anyio
    from tqdm import tqdm

    from gateway.client import MemoryClient

    by_user: dict[str, list[str]] = defaultdict(list)
    for text, user in items:
        by_user[user].append(text)
    jobs = [(user, texts[i:i + batch], f"{tag}-{user}-{i}") for user, texts in by_user.items()
            for i in range(0, len(texts), batch)]
    bar = tqdm(total=len(items), desc="memstream: top-up via add([...], infer=False)", unit="mem")
    started = time.perf_counter()

    async def worker() -> None:
        async with MemoryClient(url, token) as client:
            while jobs:
                user, texts, request_id = jobs.pop()
                await client.add([{"role": "user", "content": t} for t in texts], user_id=user, infer=False,
                                 request_id=request_id)
                bar.update(len(texts))

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    bar.close()
    seconds = time.perf_counter() - started
    return {"memories": len(items), "seconds": round(seconds, 1), "per_s": round(len(items) / seconds, 1)}


async def memstream(url: str, token: str, items: list[tuple[str, str]], sizes: list[int],
                    plans: list[list[tuple[str, str]]], public_seed: int, users: int) -> tuple[list, dict, int]:
    """Seed, then search at each size: the latency levels, how the seeding went, memories stored."""
    from scripts import bench_gateway as gw

    public = min(public_seed, len(items))
    seeding = {"public": await gw.seed(url, token, public, users), "top_up": []}
    stored, levels = public, []
    for size, plan in zip(sizes, plans):
        if size > stored:
            seeding["top_up"].append(await top_up(url, token, items[stored:size], f"top{size}"))
            stored = size
        row = await gw.search_latency(url, token, 1, 0, users, plan=plan)
        levels.append({"memories": stored, **{key: row[key] for key in ("n", "p50_ms", "p99_ms")}})
    if levels:
        levels[-1]["modes"] = await mode_latency(url, token, plans[-1] * 2)
    return levels, seeding, stored


async def mode_latency(url: str, token: str, plan: list[tuple[str, str]],
                       modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """p50/p99 of each search mode over the same (query, user) pairs, the modes taking turns."""
    from tqdm import tqdm

    from gateway.client import MemoryClient

    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    async with MemoryClient(url, token) as client:
        for mode in modes:
            await client.search("warm up", user_id=plan[0][1], limit=5, mode=mode)
        for turn, (query, user) in enumerate(tqdm(plan, desc=f"search x {len(modes)} modes", unit="q")):
            for mode in rotated(modes, turn):
                started = time.perf_counter()
                await client.search(query, user_id=user, limit=5, mode=mode)
                samples[mode].append((time.perf_counter() - started) * 1000)
    return {mode: latency_stats(found) for mode, found in samples.items()}


def from_mem0(found: dict[str, Any]) -> dict[str, Any]:
    """The mem0ai driver's search answer as the results' ``search``, ``seeding`` and ``memory`` parts."""
    return {"search": [{"memories": lv["memories"], **latency_stats(lv["samples_ms"])} for lv in found["levels"]],
            "seeding": {"public": found["public_seed"], "top_up": found.get("top_up", []), "stored": found["stored"]},
            "memory": {"memories": found["stored"], "pss_mb": found["pss_mb"], "rss_mb": found["rss_mb"]}}


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    ms, m0 = results["search"]["memstream"], results["search"].get("mem0") or []
    for i, level in enumerate(ms):
        other = m0[i] if i < len(m0) else {}
        for q in ("p50", "p99"):
            a, b = level.get(f"{q}_ms"), other.get(f"{q}_ms")
            out.append([f"(1) search {q} at {level['memories']:,} memories", fmt(a, " ms"), fmt(b, " ms"),
                        times(ratio(b, a))])
    return out + mode_rows(results)


def mode_rows(results: dict[str, Any]) -> list[list[str]]:
    ms, m0 = results["search"]["memstream"], results["search"].get("mem0") or []
    if not ms or "modes" not in ms[-1]:
        return []
    other = m0[len(ms) - 1] if len(m0) >= len(ms) else {}
    return [[f"(1) search {q} at {ms[-1]['memories']:,} memories, memstream {mode} mode",
             fmt(found[f"{q}_ms"], " ms"), fmt(other.get(f"{q}_ms"), " ms"), times(ratio(other.get(f"{q}_ms"),
                                                                                       found[f"{q}_ms"]))]
            for mode, found in ms[-1]["modes"].items() for q in ("p50", "p99")]


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Hybrid's p50 within 1 ms of dense's at the largest size."""
    ms = results["search"].get("memstream") or []
    modes = ms[-1].get("modes") if ms else None
    if not modes or "hybrid" not in modes or "dense" not in modes:
        return {}
    extra = round(modes["hybrid"]["p50_ms"] - modes["dense"]["p50_ms"], 2)
    return {"hybrid_search_extra_p50_ms": {
        "target": HYBRID_EXTRA_P50_MS, "value": extra, "met": extra <= HYBRID_EXTRA_P50_MS, "unit": " ms",
        "text": f"hybrid search p50 at {ms[-1]['memories']:,} memories within {HYBRID_EXTRA_P50_MS:.0f} ms of "
                "dense (hybrid − dense)"}}


def plot(ax, results: dict[str, Any]) -> None:
    ms, m0 = results["search"]["memstream"], results["search"].get("mem0") or []
    labels = [f"{lv['memories']:,}" for lv in ms]
    series = {"memstream p50": [lv["p50_ms"] for lv in ms], "mem0ai p50": [lv.get("p50_ms") for lv in m0],
              "memstream p99": [lv["p99_ms"] for lv in ms], "mem0ai p99": [lv.get("p99_ms") for lv in m0]}
    series = {k: v + [None] * (len(labels) - len(v)) for k, v in series.items() if any(v)}
    bars(ax, labels, series, "ms")
    ax.set_xlabel("memories stored (100 users)")
    ax.set_title("(1) search latency, lower is better")
