"""Scenario (3) of ``memstream bench``: commit → subscriber latency at 1 / 100 / 1,000
subscribers, one WebSocket each. memstream only: mem0ai has no change feed to compare with."""

from __future__ import annotations

from typing import Any

from scripts.compare.report import bars, fmt


async def memstream(url: str, token: str, levels: list[int], events: int) -> list[dict]:
    from scripts import bench_gateway as gw

    return [await gw.subscriber_latency(url, token, subscribers, events) for subscribers in levels]


def rows(results: dict[str, Any]) -> list[list[str]]:
    return [[f"(3) commit → subscriber, {row['subscribers']:,} subscriber{'s' * (row['subscribers'] != 1)}",
             f"p50 {fmt(row['p50_ms'], ' ms')}, p99 {fmt(row['p99_ms'], ' ms')} "
             f"({row['delivered']:,}/{row['subscribers'] * row['events']:,} delivered)",
             "not supported", "—"]
            for row in results["subscribers"]["memstream"]]


def plot(ax, results: dict[str, Any]) -> None:
    measured = results["subscribers"]["memstream"]
    labels = [f"{r['subscribers']:,}" for r in measured]
    bars(ax, labels, {"memstream p50": [r["p50_ms"] for r in measured],
                      "memstream p99": [r["p99_ms"] for r in measured]}, "ms")
    ax.set_xlabel("subscribers (one WebSocket each)")
    ax.set_title("(3) commit → subscriber latency (mem0ai: no such feature)")
