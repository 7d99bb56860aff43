"""Scenario (5) of ``memstream bench``: memory after seeding, as PSS (pages shared between
processes counted once, so a sum over processes is fair). memstream: every process of
``memstream serve``; mem0ai: its driver process, measured by the driver after its search seeding."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from scripts.compare.report import COLORS, fmt, ratio, times


def tree_memory(pid: int) -> dict[str, float]:
    """PSS and RSS of a process tree: the gateway process, Ray's worker processes (``ray::...``:
    shard, embedder, extractor actors) and Ray's own services (GCS, raylet, dashboard, ...)."""
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


def rows(results: dict[str, Any]) -> list[list[str]]:
    memory = results.get("memory") or {}
    if not memory:
        return []
    a, b = memory["memstream"], memory.get("mem0") or {}
    return [[f"(5) memory after seeding {a.get('memories', 0):,} memories (PSS)",
             f"{fmt(a.get('total_pss_mb'), ' MB')} (gateway {fmt(a.get('gateway_pss_mb'))}, Ray workers "
             f"{fmt(a.get('ray_workers_pss_mb'))}, Ray services {fmt(a.get('ray_services_pss_mb'))})",
             fmt(b.get("pss_mb"), " MB") + " (one process)" if b else "—",
             times(ratio(b.get("pss_mb"), a.get("total_pss_mb")))]]


def plot(ax, results: dict[str, Any]) -> None:
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
