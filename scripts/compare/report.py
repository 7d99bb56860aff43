"""What the scenarios of ``memstream bench`` share when they report: ratios and latency
percentiles, table cells, bar charts, and the assembly of the Markdown table, the targets, the
notes and the PNG plots from the rows and plot functions each scenario contributes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGETS = {"search_p50_speedup_at_largest": 10.0, "add_throughput_ratio_at_most_users": 10.0}
COLORS = {"memstream": "#1f77b4", "mem0ai": "#ff7f0e"}
NO_SUBSCRIPTIONS = "mem0ai has no change feed / subscription API: nothing to compare"
NO_BATCH_INGEST = "mem0ai has no batch-ingestion job: its interactive adds of the same turns are shown"

Plot = Callable[[Any, dict[str, Any]], None]


# ---- numbers -----------------------------------------------------------------------------------
def latency_stats(samples_ms: list[float]) -> dict[str, Any]:
    from scripts.machine import percentile

    return {"n": len(samples_ms), "p50_ms": round(percentile(samples_ms, 50), 2),
            "p99_ms": round(percentile(samples_ms, 99), 2)}


def rotated(modes: tuple[str, ...], turn: int) -> tuple[str, ...]:
    """The search modes in the order of this turn: each mode goes first as often as the others, so
    that none always meets the warm caches (or the cold ones)."""
    shift = turn % len(modes)
    return modes[shift:] + modes[:shift]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def targets(results: dict[str, Any]) -> dict[str, Any]:
    ms, m0 = results["search"].get("memstream") or [], results["search"].get("mem0") or []
    adds_ms, adds_m0 = results["adds"].get("memstream") or [], results["adds"].get("mem0") or []
    return {
        "search_p50_speedup_at_largest": {
            "target": TARGETS["search_p50_speedup_at_largest"], "size": ms[-1]["memories"] if ms else 0,
            "value": ratio(m0[-1]["p50_ms"], ms[-1]["p50_ms"]) if ms and m0 else None},
        "add_throughput_ratio_at_most_users": {
            "target": TARGETS["add_throughput_ratio_at_most_users"], "users": adds_ms[-1]["users"] if adds_ms else 0,
            "value": ratio(adds_ms[-1]["turns_per_s"], adds_m0[-1]["turns_per_s"]) if adds_ms and adds_m0 else None},
    }


# ---- the table -------------------------------------------------------------------------------
def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def times(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}×"


def target_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    t = results.get("targets") or {}
    for key, text in (("search_p50_speedup_at_largest", "search p50 at {size:,} memories at least 10× lower "
                       "than mem0ai"),
                      ("add_throughput_ratio_at_most_users", "add throughput at {users} users at least 10× mem0ai")):
        item = t.get(key)
        if not item:
            continue
        value = item.get("value")
        state = "not measured" if value is None else ("met" if value >= item["target"] else "not met")
        lines.append(f"- {text.format(**item)}: **{times(value)}** ({state})")
    for item in t.values():  # the scenarios' own targets say what they are and whether they are met
        if isinstance(item, dict) and "text" in item:
            state = "not measured" if item.get("value") is None else ("met" if item.get("met") else "not met")
            lines.append(f"- {item['text']}: **{fmt(item.get('value'), item.get('unit', ''))}** ({state})")
    return lines


def markdown(results: dict[str, Any], rows: list[list[str]]) -> str:
    """The report: ``rows`` are (what, memstream, mem0ai, memstream advantage), as the scenarios give them."""
    s = results["settings"]
    machine = results["machine"]
    out = [
        "# memstream vs mem0ai",
        "",
        f"{machine['when']} — {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"memstream {machine['versions'].get('memstream', '?')}, mem0ai "
        f"{(results['versions'].get('mem0') or {}).get('mem0ai', 'not run')}; stand-in LLM "
        f"{s['llm_latency_ms']:.0f} ms per call; embedder all-MiniLM-L6-v2 for both "
        f"(memstream: its CPU default, onnxruntime with int8 MatMul weights, 1 thread per process; mem0ai: "
        f"sentence-transformers on torch, "
        f"{s['mem0_torch_threads']} thread).",
        "",
        "| scenario | memstream | mem0ai | memstream advantage |",
        "|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        "Advantage: mem0ai ÷ memstream for latency and memory, memstream ÷ mem0ai for throughput and recall "
        "(> 1× favours memstream).",
        "",
        "Targets (reported, not asserted):",
        *target_lines(results),
        "",
        "Notes:",
        *(f"- {note}" for note in results.get("notes", [])),
        *(["", "Errors:", *(f"- {error}" for error in results["errors"])] if results.get("errors") else []),
        "",
    ]
    return "\n".join(out)


def notes(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """How each system was run, for the reader of the table (a scenario may add its own after these)."""
    seeding = results["seeding"]
    ms_seed, m0_seed = seeding.get("memstream") or {}, seeding.get("mem0") or {}
    return [
        "The LLM is the benchmark stand-in server (`scripts/fake_llm_server.py`), not a language model: it "
        f"answers both systems' extraction requests with the same clauses after {args.latency_ms:.0f} ms, so the "
        "numbers measure each system's own overhead around a known LLM latency. memstream makes up to two LLM "
        "calls per turn (extract, then decide when similar memories exist); mem0ai 2.2.1 makes one (additive "
        "extraction); each ceiling uses the calls the stand-in counted for that system.",
        "Seeding: the first "
        f"{args.public_seed:,} memories go through each system's public one-memory `add(infer=False)` "
        f"(memstream over the gateway: {(ms_seed.get('public') or {}).get('adds_per_s', '—')}/s with 32 "
        f"connections; mem0ai `Memory.add`: {(m0_seed.get('public') or {}).get('adds_per_s', '—')}/s, it embeds "
        "one message at a time). The rest: memstream `add([64 messages], infer=False)` (public API, one batched "
        "embedding per call); mem0ai batch-embedded with the same model and inserted through its own "
        "`vector_store.insert` with the payload and history row `add(infer=False)` builds. Every search goes "
        "through the public `search` (memstream: `MemoryClient.search` over the WebSocket; mem0ai: "
        "`Memory.search`, in-process), one client, the same (query, user) pairs, limit 5.",
        "mem0ai runs torch with 1 thread (`OMP_NUM_THREADS=1`, `torch.set_num_threads(1)`): on 2 cores the "
        "default thread count made one MiniLM embedding take 350-840 ms instead of ~34 ms. mem0ai's base "
        "install has neither spaCy nor fastembed, so its search is semantic only (no BM25, no entity boosts) "
        "and `add` skips entity linking - the cheapest mem0ai configuration.",
        "mem0ai adds use `AsyncMemory` with the event loop's default executor widened to "
        f"{results['adds'].get('mem0_executor_threads', '—')} threads (its blocking steps run in "
        "`asyncio.to_thread`, otherwise capped at 6 threads on 2 cores), and calls into its local Qdrant "
        "serialized by a lock: qdrant-client's local mode is not thread-safe (concurrent adds raised IndexError "
        "inside qdrant_client/local/payload_filters.py without it). mem0ai's adds start from an empty store; "
        "memstream's run on the server that already holds the seeded memories (this favours mem0ai: its "
        "per-add similarity search scans every stored point). memstream adds: one WebSocket per user.",
        "Memory: PSS, so pages shared between processes are counted once. memstream: every process of "
        "`memstream serve` (gateway, Ray workers = shard / embedder / extractor actors, Ray's own services); "
        "mem0ai: the driver process (torch + model + local Qdrant).",
        NO_SUBSCRIPTIONS + ".",
        NO_BATCH_INGEST + ". memstream batch ingestion is `memstream ingest FILE.jsonl` in its own process and "
        "Ray instance; its turns/s counts from reading the file to the last commit (Ray Data's start-up "
        "included, starting Ray itself not).",
    ]


# ---- the plots -------------------------------------------------------------------------------
def plain_ticks(axis) -> None:
    """1, 10, 100 on log axes instead of 10^0, 10^1, 10^2."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))


def bars(ax, labels: list[str], series: dict[str, list[float | None]], unit: str, log: bool = False,
         shades: dict[str, float] | None = None) -> None:
    """Grouped bars, one group per label and one colour per system, each bar with its value;
    ``shades``: a lighter bar (alpha) for some series of one system (its variants)."""
    width = 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
        heights = [v or 0 for v in values]
        drawn = ax.bar(xs, heights, width, label=name, color=COLORS.get(name.split(" ")[0]),
                       alpha=(shades or {}).get(name, 0.45 if "p99" in name else 1.0))  # tails lighter
        for bar, v in zip(drawn, values):
            if v:
                text = f"{v:.2f}" if v < 1 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
                ax.annotate(text, (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
        plain_ticks(ax.yaxis)
    ax.legend(fontsize=8, loc="upper left")


def write_plots(results: dict[str, Any], out_dir: Path, plots: dict[str, Plot]) -> list[str]:
    """One overview figure with every plot, then each plot on its own (a hidden one is not written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    for ax, draw in zip(axes.flat, plots.values()):
        draw(ax, results)
    fig.suptitle(f"memstream vs mem0ai — {results['machine']['cores']} cores, stand-in LLM "
                 f"{results['settings']['llm_latency_ms']:.0f} ms/call, all-MiniLM-L6-v2 for both", fontsize=13)
    fig.tight_layout()
    path = out_dir / "compare.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(str(path))
    for name, draw in plots.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        draw(ax, results)
        if ax.get_visible():
            fig.tight_layout()
            path = out_dir / f"compare_{name}.png"
            fig.savefig(path, dpi=100)
            written.append(str(path))
        plt.close(fig)
    return written
