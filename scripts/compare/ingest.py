"""Scenario (4) of ``memstream bench``: batch ingestion vs interactive adds of the same turns.

memstream's batch path is ``memstream ingest FILE.jsonl`` run as a user runs it (its own process
and Ray instance); mem0ai has no batch job, so both systems' interactive adds of the same turns
(``adds.adds`` for memstream) are shown next to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from scripts.compare import ROOT
from scripts.compare.adds import TOPICS
from scripts.compare.report import COLORS, fmt, ratio, times


def ingest_round(turns: int, owners: int) -> dict[str, list[str]]:
    per_owner: dict[str, list[str]] = defaultdict(list)
    for i in range(turns):
        per_owner[f"ingest-{i % owners}"].append(f"I like {TOPICS[i % len(TOPICS)]} and I visited place {i}")
    return dict(per_owner)


def batch_ingest(per_owner: dict[str, list[str]], workdir: Path, llm_url: str) -> dict:
    """``memstream ingest`` on a JSONL file of the same turns, as a user runs it (own Ray instance)."""
    path = workdir / "ingest.jsonl"
    with path.open("w") as out:
        turns = [(owner, i, turn) for owner, owned in per_owner.items() for i, turn in enumerate(owned)]
        for owner, i, turn in sorted(turns, key=lambda r: (r[1], r[0])):
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


def rows(results: dict[str, Any]) -> list[list[str]]:
    ingest = results.get("ingest") or {}
    if not ingest:
        return []
    batch, inter = ingest["memstream"].get("batch") or {}, ingest["memstream"].get("interactive") or {}
    other = (ingest.get("mem0") or {}).get("interactive") or {}
    return [[f"(4) batch ingestion, {inter.get('turns', batch.get('turns', 0)):,} turns",
             f"{fmt(batch.get('turns_per_s'), ' turns/s')} (`memstream ingest`)", "no batch job", "—"],
            [f"(4) interactive adds of the same turns, {inter.get('users', 0)} users",
             fmt(inter.get("turns_per_s"), " turns/s"), fmt(other.get("turns_per_s"), " turns/s"),
             times(ratio(inter.get("turns_per_s"), other.get("turns_per_s")))]]


def plot(ax, results: dict[str, Any]) -> None:
    ingest = results.get("ingest") or {}
    if not ingest:
        ax.set_visible(False)
        return
    labels = ["memstream\nbatch (Ray Data)", "memstream\ninteractive", "mem0ai\ninteractive"]
    values = [(ingest["memstream"].get("batch") or {}).get("turns_per_s"),
              (ingest["memstream"].get("interactive") or {}).get("turns_per_s"),
              ((ingest.get("mem0") or {}).get("interactive") or {}).get("turns_per_s")]
    drawn = ax.bar(labels, [v or 0 for v in values], color=[COLORS["memstream"], COLORS["memstream"], COLORS["mem0ai"]])
    drawn[0].set_hatch("//")
    for bar, v in zip(drawn, values):
        if v:
            ax.annotate(f"{v:.1f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("turns/s")
    turns = (ingest["memstream"].get("interactive") or {}).get("turns", 0)
    ax.set_title(f"(4) {turns} turns: batch ingestion vs interactive adds")
