"""Gateway benchmark, through real WebSockets against ``memstream serve`` in its own process:

- search round-trip latency p50/p99 with 1, 16, 64 concurrent clients at 20k memories (100 users);
- commit → subscriber latency p50/p99 with 1, 100, 1,000, 10,000 subscribers of one owner (one
  connection each; lean subscribers in their own processes, ``scripts/fanout_subscribers.py``);
- the gateway process's RSS with 10,000 idle authenticated connections.

The LLM is not involved (memories are added with ``infer=False``); the server's LLM points at
the benchmark stand-in so that starting it costs nothing. Writes ``bench/results/gateway.json``.

    memstream bench-gateway [--runtime ray|local] [--memories 20000] [--idle 10000]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time

import anyio
import psutil
from aiohttp import ClientSession, web
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm
from websockets.asyncio.client import connect

from gateway.auth import mint_token
from gateway.client import MemoryClient
from scripts import search_hops
from scripts.fake_llm_server import make_app
from scripts.fanout_subscribers import SubscriberFleet
from scripts.machine import describe, percentile, write_results
from scripts.process_memory import tree_memory

SECRET = "benchmark-secret-" + "x" * 32
TOPICS = ["sailing", "chess", "opera", "baking", "tennis", "poetry", "cycling", "pottery", "jazz", "hiking",
          "gardening", "astronomy", "knitting", "climbing", "photography", "cooking", "running", "painting"]
QUERIES = ["what sport does the user like", "favourite food", "hobbies on weekends", "music taste",
           "where did they travel", "pets and animals", "work and career", "books they read"]


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _stats(samples_ms: list[float]) -> dict:
    return {"n": len(samples_ms), "p50_ms": round(percentile(samples_ms, 50), 2),
            "p99_ms": round(percentile(samples_ms, 99), 2)}


class Server:
    """``memstream serve`` in a child process, with its own fd limit and data folder."""

    def __init__(self, runtime: str, data_dir: str, llm_url: str, gateway_processes: int = 1):
        env = {**os.environ, "MEMSTREAM_TOKEN_SECRET": SECRET, "MEMSTREAM_LOG__LEVEL": "warning",
               "MEMSTREAM_LLM__PROVIDER": "openai", "MEMSTREAM_LLM__BASE_URL": llm_url,
               "MEMSTREAM_GATEWAY__RATE_PER_S": "100000", "MEMSTREAM_GATEWAY__RATE_BURST": "100000",
               "MEMSTREAM_GATEWAY__PROCESSES": str(gateway_processes)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "serve", "--runtime", runtime, "--port", "0",
             "--data-dir", data_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            preexec_fn=_raise_fd_limit)
        self.url = ""

    def wait_ready(self, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("memstream serve exited:\n" + "".join(lines))
            lines.append(line)
            if match := re.search(r"listening on (ws://\S+)", line):
                self.url = match.group(1)
                return self.url
        raise TimeoutError("memstream serve did not start")

    def rss_mb(self) -> float:
        """RSS of the gateway process (the Ray actors, when used, are separate processes)."""
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def seed_item(i: int, users: int) -> tuple[str, str]:
    """The ``i``-th seeded memory and its user (bench-compare stores the same items in mem0ai)."""
    topic, other = TOPICS[i % len(TOPICS)], TOPICS[(i * 7) % len(TOPICS)]
    return f"Memory {i}: enjoys {topic} and sometimes {other} (note {i % 97})", f"user-{i % users}"


async def seed(url: str, token: str, memories: int, users: int, concurrency: int = 32) -> dict:
    """One public ``add(infer=False)`` per memory, ``concurrency`` connections."""
    started = time.perf_counter()
    progress = tqdm(total=memories, desc="seeding memories", unit="mem")
    queue = list(range(memories))

    async def worker() -> None:
        async with MemoryClient(url, token) as client:
            while queue:
                i = queue.pop()
                text, user = seed_item(i, users)
                await client.add(text, user_id=user, infer=False, request_id=f"seed-{i}")
                progress.update(1)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    progress.close()
    seconds = time.perf_counter() - started
    return {"memories": memories, "users": users, "seconds": round(seconds, 1),
            "adds_per_s": round(memories / seconds, 1)}


async def search_latency(url: str, token: str, clients: int, per_client: int, users: int,
                         plan: list[tuple[str, str]] | None = None) -> dict:
    """``plan``: fixed (query, user) pairs, split over the clients; else random ones."""
    samples: list[float] = []
    per_client = len(plan) // clients if plan else per_client
    progress = tqdm(total=clients * per_client, desc=f"search x{clients} clients", unit="q")

    async def one(c: int) -> None:
        rng = random.Random(c)
        mine = plan[c::clients][:per_client] if plan else [
            (rng.choice(QUERIES), f"user-{rng.randrange(users)}") for _ in range(per_client)]
        async with MemoryClient(url, token) as client:
            await client.search("warm up", user_id="user-0")
            for query, user in mine:
                started = time.perf_counter()
                await client.search(query, user_id=user, limit=5)
                samples.append((time.perf_counter() - started) * 1000)
                progress.update(1)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for c in range(clients):
            tg.start_soon(one, c)
    seconds = time.perf_counter() - started
    progress.close()
    return {"clients": clients, **_stats(samples), "mean_ms": round(sum(samples) / max(1, len(samples)), 3),
            "searches_per_s": round(len(samples) / seconds, 1)}


async def search_with_hops(url: str, token: str, clients: int, per_client: int, users: int,
                           plan: list[tuple[str, str]] | None = None) -> dict:
    """``search_latency`` with the load average and the mean of every hop over the same searches."""
    before = await search_hops.scrape(url)
    result = await search_latency(url, token, clients, per_client, users, plan)
    after = await search_hops.scrape(url)
    means = search_hops.hop_means(before, after)
    return {**result, "load_average_1": round(os.getloadavg()[0], 2),
            "hops_ms": search_hops.breakdown(means, result["mean_ms"]),
            "read_socket_share": search_hops.share(before, after, "read_socket_ms"),
            "hop_means_ms": {k: round(v, 3) for k, v in sorted(means.items())}}


async def search_levels(server: Server, url: str, token: str, args: argparse.Namespace) -> dict:
    """Each level of ``args.clients`` with its hops, then py-spy under the most clients."""
    levels = {"search": [await search_with_hops(url, token, c, max(20, args.searches // c), args.users)
                         for c in args.clients]}
    if args.profile_seconds > 0:
        levels["search_profile"] = await search_profile(server, url, token, max(args.clients),
                                                        args.profile_seconds, args.users)
    return levels


async def search_profile(server: Server, url: str, token: str, clients: int, seconds: float, users: int) -> dict:
    """``clients`` search for ``seconds`` while py-spy samples the gateway, the shards and the embedder."""
    pids = {"gateway": server.process.pid}
    for proc in tree_memory(server.process.pid)["per_process"]:
        if proc["role"] in ("shard actor", "embedder actor"):
            pids[f"{proc['role'].split()[0]}-{proc['pid']}"] = proc["pid"]
    deadline = time.monotonic() + seconds + 2
    done = {"n": 0}

    async def one(c: int) -> None:
        rng = random.Random(1000 + c)
        async with MemoryClient(url, token) as client:
            while time.monotonic() < deadline:
                await client.search(rng.choice(QUERIES), user_id=f"user-{rng.randrange(users)}", limit=5)
                done["n"] += 1

    async with anyio.create_task_group() as tg:
        for c in range(clients):
            tg.start_soon(one, c)
        await anyio.sleep(1)  # connections open, the load is steady
        profiles = await anyio.to_thread.run_sync(search_hops.profile, pids, seconds)
    return {"clients": clients, "seconds": seconds, "searches": done["n"],
            "load_average_1": round(os.getloadavg()[0], 2), "profiles": profiles}


async def subscriber_latency(url: str, token: str, subscribers: int, events: int, processes: int = 2,
                             hops: bool = True) -> dict:
    """Latency from the commit (the event's ``created_at``, stamped just before the journal
    append) to its arrival at each subscriber (``scripts.fanout_subscribers``: lean subscribers
    in their own processes, so that the figure is the gateway's, not a client library's)."""
    owner = f"user:fanout-{subscribers}"
    before = await _fanout_hops(url) if hops else {}
    fleet = SubscriberFleet(url, token, owner, subscribers, events, processes=min(processes, subscribers))
    await anyio.to_thread.run_sync(fleet.start)
    async with MemoryClient(url, token) as writer:
        for i in tqdm(range(events), desc=f"events to {subscribers} subscribers", unit="ev"):
            await writer.add(f"fan-out event {i}", user_id=owner.removeprefix("user:"), infer=False)
            await anyio.sleep(0.05)  # paced: each event's fan-out is measured on its own
    samples = await anyio.to_thread.run_sync(fleet.latencies)
    row = {"subscribers": subscribers, "events": events, "delivered": len(samples), **_stats(samples)}
    if hops:  # one gateway process: its /metrics has every hop (with several, a scrape reaches one of them)
        after = await _fanout_hops(url)
        row["hops_mean_ms"] = {name: round((after[name][0] - before[name][0]) * 1000
                                           / max(1, after[name][1] - before[name][1]), 2) for name in after}
    return row


_HOPS = {"memstream_gateway_event_arrival_seconds": "commit_to_gateway",
         "memstream_gateway_fanout_seconds": "gateway_writes_to_all"}


async def _fanout_hops(url: str) -> dict[str, tuple[float, float]]:
    """(sum s, count) of the gateway's per-hop histograms, read from its ``/metrics``."""
    http = url.replace("ws://", "http://", 1).split("/ws")[0].rstrip("/") + "/metrics"
    async with ClientSession() as session, session.get(http) as response:
        text = await response.text()
    sums: dict[str, list[float]] = {label: [0.0, 0.0] for label in _HOPS.values()}
    for family in text_string_to_metric_families(text):
        label = _HOPS.get(family.name)
        for sample in family.samples if label else ():
            if sample.name.endswith("_sum"):
                sums[label][0] = sample.value
            elif sample.name.endswith("_count"):
                sums[label][1] = sample.value
    return {label: (total, count) for label, (total, count) in sums.items()}


async def idle_connections(server: Server, url: str, token: str, count: int) -> dict:
    base = server.rss_mb()
    sockets = []
    progress = tqdm(total=count, desc="idle connections", unit="conn")
    limiter = anyio.Semaphore(64)

    async def open_one() -> None:
        async with limiter:
            ws = await connect(url, compression=None, open_timeout=120)
            await ws.recv()  # welcome
            await ws.send(f'{{"type":"auth","id":1,"token":"{token}"}}')
            await ws.recv()
            sockets.append(ws)
            progress.update(1)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(open_one)
    seconds = time.perf_counter() - started
    await anyio.sleep(2)
    loaded = server.rss_mb()
    progress.close()
    for ws in sockets:
        await ws.close()
    return {"connections": len(sockets), "rss_before_mb": round(base, 1), "rss_with_connections_mb": round(loaded, 1),
            "kb_per_connection": round((loaded - base) * 1024 / max(1, len(sockets)), 1),
            "open_seconds": round(seconds, 1)}


async def run(args: argparse.Namespace) -> dict:
    _raise_fd_limit()
    runner = web.AppRunner(make_app(0.2))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    llm_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    data_dir = tempfile.mkdtemp(prefix="memstream-bench-gateway-")
    server = Server(args.runtime, data_dir, llm_url)
    token = mint_token(SECRET, tenant="default", owners=["*"], rights=["read", "write", "subscribe"], ttl_s=86400)
    results: dict = {"benchmark": "gateway", "runtime": args.runtime, "machine": describe()}
    try:
        url = await anyio.to_thread.run_sync(server.wait_ready)
        results["seed"] = await seed(url, token, args.memories, args.users)
        results.update(await search_levels(server, url, token, args))
        # idle connections before the subscriber levels: 10,000 subscribers grow the heap that idle
        # connections would then reuse, and the process would not grow at all
        results["idle"] = await idle_connections(server, url, token, args.idle)
        results["subscribers"] = [await subscriber_latency(url, token, s, args.events, args.subscriber_processes)
                                  for s in args.subscribers]
    finally:
        server.stop()
    try:
        for processes in (p for p in args.gateway_processes if p > 1):
            results[f"subscribers_{processes}_gateway_processes"] = await _subscribers_on(
                args, llm_url, token, processes)
    finally:
        await runner.cleanup()
    return results


async def _subscribers_on(args: argparse.Namespace, llm_url: str, token: str, processes: int) -> list[dict]:
    """The subscriber levels again, on a fresh server with ``processes`` gateway processes on one
    port (``gateway.processes``; the kernel spreads the subscribers' connections over them)."""
    server = Server(args.runtime, tempfile.mkdtemp(prefix="memstream-bench-gateway-"), llm_url, processes)
    try:
        url = await anyio.to_thread.run_sync(server.wait_ready)
        return [await subscriber_latency(url, token, s, args.events, args.subscriber_processes, hops=False)
                for s in args.subscribers if s >= 1000]
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memstream bench-gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", choices=["ray", "local"], default="ray")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--searches", type=int, default=640, help="searches per concurrency level")
    parser.add_argument("--profile-seconds", type=float, default=10.0,
                        help="py-spy the gateway and actors this long under the most clients (0: skip)")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100, 1000, 10000])
    parser.add_argument("--subscriber-processes", type=int, default=2)
    parser.add_argument("--gateway-processes", type=int, nargs="+", default=[1, 2],
                        help="gateway processes on one port; levels of 1,000+ subscribers are measured again "
                             "for each count above 1 (Ray runtime)")
    parser.add_argument("--events", type=int, default=20, help="events per subscriber level")
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--out", default="bench/results/gateway.json")
    args = parser.parse_args(argv)
    write_results(anyio.run(run, args), args.out)


if __name__ == "__main__":
    main()
