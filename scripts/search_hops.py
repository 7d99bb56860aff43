"""Where a search's time goes over the wire, for ``memstream bench-gateway``: per-hop means from
the gateway's hop counters (``runtime/hops.py``, at ``/metrics``), and what py-spy samples in
the gateway, the shard actors and the embedder actor while many clients search.

The hops compose: client round trip = WebSocket both ends (client, socket I/O, frame decode and
encode, writer queue) + the gateway's request handling + its search batcher's wait + Ray
transport gateway→shard + the shard (its embedder round trip: coalescing wait + Ray transport shard→embedder + the
embedder's queue + the model call - with ``ray.embed_in: shard`` only the queue and the model call, in the
shard's process; then the vector search and the rest). Every hop is a mean
over the same requests (the difference of two scrapes), so the parts add up to the total.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

def parse_metrics(text: str, operation: str = "search") -> dict[str, float]:
    """The sums and counts that the breakdown needs, from the gateway's Prometheus text (pure)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "memstream_hop_milliseconds_total" and labels.get("operation") == operation:
                out[f"sum:{labels['hop']}"] = sample.value
            elif sample.name == "memstream_hop_requests_total" and labels.get("operation") == operation:
                out[f"count:{labels['hop']}"] = sample.value
            elif sample.name == "memstream_gateway_request_seconds_sum" and labels.get("type") == operation:
                out["sum:gateway_request_ms"] = sample.value * 1000
            elif sample.name == "memstream_gateway_request_seconds_count" and labels.get("type") == operation:
                out["count:gateway_request_ms"] = sample.value
    return out


def hop_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean milliseconds per hop over the requests between two scrapes (pure). A hop that not every
    request went through (e.g. the coalescing wait of a shard that embedded nothing) is averaged
    over the requests of the run, so the means still add up."""
    requests = after.get("count:gateway_request_ms", 0) - before.get("count:gateway_request_ms", 0)
    if requests <= 0:
        return {}
    means = {}
    for key, value in after.items():
        if key.startswith("sum:"):
            means[key[4:]] = (value - before.get(key, 0.0)) / requests
    return means


def share(before: dict[str, float], after: dict[str, float], hop: str) -> float:
    """The fraction of the requests between two scrapes that went through ``hop`` (pure)."""
    requests = after.get("count:gateway_request_ms", 0) - before.get("count:gateway_request_ms", 0)
    if requests <= 0:
        return 0.0
    return round((after.get(f"count:{hop}", 0) - before.get(f"count:{hop}", 0)) / requests, 3)


def breakdown(means: dict[str, float], client_ms: float) -> dict[str, float]:
    """The client's mean round trip split into hops that add up to it (pure)."""
    m = lambda hop: means.get(hop, 0.0)  # noqa: E731
    shard_round_trip = m("shard_call_ms") + m("shard_search_call_ms")  # one call per search, or batched
    # through the embedder actor: the shard's Ray call; in the shard (ray.embed_in: shard): the model
    # call and its queue, no Ray transport
    embed_round_trip = (m("embed_coalesce_call_ms") + m("embed_call_ms")
                        or m("embedder_wait_ms") + m("embedder_call_ms"))
    parts = {
        "websocket_both_ends": client_ms - m("gateway_request_ms"),
        "gateway_handling": m("gateway_request_ms") - m("shard_search_wait_ms") - shard_round_trip,
        "gateway_batching_wait": m("shard_search_wait_ms"),
        "gateway_to_shard_transport": shard_round_trip - m("shard_ms"),
        "shard_coalescing_wait": m("embed_coalesce_wait_ms"),
        "ray_shard_to_embedder": embed_round_trip - m("embedder_wait_ms") - m("embedder_call_ms"),
        "embedder_queue": m("embedder_wait_ms"),
        "embedding_model": m("embedder_call_ms"),
        "shard_search_and_rest": m("shard_ms") - m("embed_coalesce_wait_ms") - embed_round_trip,
    }
    parts = {k: round(v, 3) for k, v in parts.items()}
    parts["total_client_round_trip"] = round(client_ms, 3)
    return parts


async def scrape(ws_url: str, operation: str = "search") -> dict[str, float]:
    http_url = ws_url.replace("ws://", "http://", 1).rsplit("/", 1)[0] + "/metrics"
    async with aiohttp.ClientSession() as session, session.get(http_url) as response:
        return parse_metrics(await response.text(), operation)


# ---- py-spy ----------------------------------------------------------------------------------
def top_frames(collapsed: str, limit: int = 15) -> dict[str, Any]:
    """From py-spy's raw (collapsed) stacks: the functions most often on top of a stack (self) and
    anywhere in it (inclusive), as shares of the samples (pure)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = lambda n: round(100 * n / total, 1) if total else 0.0  # noqa: E731
    return {"samples": total,
            "self_pct": [[frame, share(n)] for frame, n in own.most_common(limit)],
            "inclusive_pct": [[frame, share(n)] for frame, n in inclusive.most_common(limit)]}


def _py_spy() -> str:
    """The py-spy installed beside this interpreter (the venv's bin is not always on PATH)."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else (shutil.which("py-spy") or "py-spy")


def profile(pids: dict[str, int], seconds: float, rate: int = 200) -> dict[str, Any]:
    """py-spy ``record`` on each process at once, for ``seconds``, without pausing them."""
    folder = Path(tempfile.mkdtemp(prefix="memstream-pyspy-"))
    running = {}
    for name, pid in pids.items():
        out = folder / f"{name}.txt"
        running[name] = (out, subprocess.Popen(
            [_py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
             "--format", "raw", "--nonblocking", "--function", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    results: dict[str, Any] = {}
    deadline = time.monotonic() + seconds + 60
    for name, (out, process) in running.items():
        try:
            _, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if out.is_file():
            results[name] = top_frames(out.read_text())
        else:
            results[name] = {"error": (err or "py-spy wrote nothing").strip()[-300:]}
    return results
