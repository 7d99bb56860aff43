"""Memory of a process tree by role, as PSS: pages shared between processes are split among
them, so the sum over processes is what the tree really costs the machine.

``memstream serve`` on Ray is a dozen processes: the gateway, Ray's own services (GCS, raylet,
dashboard head, dashboard/metrics agent, runtime-env agent, log monitor, autoscaler monitor),
idle worker processes Ray keeps for tasks, and the actors (shards, embedder, LLM extractor, and
whatever the LLM engine starts). ``role`` names each from its command line.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# command-line fragments of Ray's own processes (not workers), first match wins
_RAY_SERVICES = (
    ("gcs_server", "ray GCS"),
    ("raylet/raylet", "ray raylet"),
    ("dashboard/dashboard.py", "ray dashboard head"),
    ("dashboard/agent.py", "ray dashboard agent"),
    ("runtime_env/agent/main.py", "ray runtime-env agent"),
    ("log_monitor.py", "ray log monitor"),
    ("autoscaler/_private/monitor.py", "ray autoscaler monitor"),
    ("ray_process_reaper", "ray reaper"),
)
# Ray sets a worker's process title to ``ray::<actor class>`` (``ray::IDLE`` while it has none)
_RAY_TITLES = {
    "IDLE": "ray idle worker",
    "DashboardAgent": "ray dashboard agent",
    "RuntimeEnvAgent": "ray runtime-env agent",
    "ShardActor": "shard actor",
    "EmbedderActor": "embedder actor",
    "ExtractorActor": "LLM extractor actor",
}
GROUPS = {"gateway": "gateway", "shard actor": "actors", "embedder actor": "actors", "LLM extractor actor": "actors",
          "ray idle worker": "ray idle workers"}


def role_of(cmdline: list[str], *, is_root: bool, parent_role: str | None = None) -> str:
    """What a process of the tree is, from its command line (pure: tested without processes)."""
    if is_root:
        return "gateway"
    first = cmdline[0] if cmdline else ""
    if first.startswith("ray::"):
        title = first[len("ray::"):].split()[0] if first[len("ray::"):].strip() else ""
        return _RAY_TITLES.get(title, f"ray worker ({title or '?'})")
    joined = " ".join(cmdline)
    for fragment, role in _RAY_SERVICES:
        if fragment in joined:
            return role
    if parent_role is not None and parent_role in ("LLM extractor actor", "LLM engine process"):
        return "LLM engine process"  # vLLM's engine core and its helpers
    return f"other ({first.rsplit('/', 1)[-1] or '?'})"


def group_of(role: str) -> str:
    """gateway | actors | ray idle workers | ray services | other."""
    if role in GROUPS:
        return GROUPS[role]
    if role == "LLM engine process":
        return "actors"
    return "ray services" if role.startswith("ray ") else "other"


def summarize(processes: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals by role and by group from ``[{pid, role, pss_mb, rss_mb, uss_mb}, ...]``."""
    by_role: dict[str, dict[str, float]] = defaultdict(lambda: {"processes": 0, "pss_mb": 0.0})
    by_group: dict[str, float] = defaultdict(float)
    for proc in processes:
        entry = by_role[proc["role"]]
        entry["processes"] += 1
        entry["pss_mb"] += proc["pss_mb"]
        by_group[group_of(proc["role"])] += proc["pss_mb"]
    total = sum(p["pss_mb"] for p in processes)
    return {
        "total_pss_mb": round(total, 1),
        "total_rss_mb": round(sum(p["rss_mb"] for p in processes), 1),
        "processes": len(processes),
        "by_group_pss_mb": {k: round(v, 1) for k, v in sorted(by_group.items(), key=lambda kv: -kv[1])},
        "by_role": {k: {"processes": int(v["processes"]), "pss_mb": round(v["pss_mb"], 1)}
                    for k, v in sorted(by_role.items(), key=lambda kv: -kv[1]["pss_mb"])},
        "per_process": sorted(processes, key=lambda p: -p["pss_mb"]),
    }


def tree_memory(pid: int) -> dict[str, Any]:
    """Walk the live process tree under ``pid`` (parents before children) and summarize it."""
    import psutil

    root = psutil.Process(pid)
    roles: dict[int, str] = {}
    processes: list[dict[str, Any]] = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            cmdline = proc.cmdline()
            parent = proc.ppid()
        except psutil.Error:
            continue  # it exited while we walked
        role = role_of(cmdline, is_root=proc.pid == pid, parent_role=roles.get(parent))
        roles[proc.pid] = role
        processes.append({"pid": proc.pid, "role": role, "pss_mb": round(info.pss / 2**20, 1),
                          "rss_mb": round(info.rss / 2**20, 1), "uss_mb": round(info.uss / 2**20, 1)})
    return summarize(processes)
