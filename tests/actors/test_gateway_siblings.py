"""``gateway.processes: 2``: two gateway processes on one port (SO_REUSEPORT), both attached to
the same actors; a subscriber on either process gets every event of its owner."""

from __future__ import annotations

import json
import signal
import uuid

import anyio
import psutil
from websockets.asyncio.client import connect

from gateway.client import MemoryClient
from tests.gateway.served import Served

MAX_CONNECTIONS = 64  # connections opened until both processes hold one (the kernel spreads them by hash)


def gateway_pids(parent: int, port: int) -> dict[int, int]:
    """Established connections on ``port`` per gateway process (the parent and its siblings)."""
    processes = [psutil.Process(parent), *psutil.Process(parent).children(recursive=True)]
    counts = {}
    for process in processes:
        if "scripts.cli" not in " ".join(process.cmdline()):
            continue
        counts[process.pid] = sum(1 for c in process.net_connections(kind="tcp")
                                  if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)
    return counts


async def test_two_gateway_processes_share_the_port_and_the_actors(cluster, llm_server, tmp_path):
    import ray

    settings = {"RAY_ADDRESS": ray.get_runtime_context().gcs_address, "MEMSTREAM_GATEWAY__PROCESSES": "2",
                "MEMSTREAM_RAY__NAMESPACE": f"siblings-{uuid.uuid4().hex[:8]}", "MEMSTREAM_RAY__SHARDS": "1",
                "MEMSTREAM_LLM__PROVIDER": "openai", "MEMSTREAM_LLM__BASE_URL": llm_server}
    served = Served(tmp_path / "data", settings, runtime="ray")
    process = served.process
    try:
        await anyio.to_thread.run_sync(served.wait_ready)
        url, token = served.ws_url, served.token
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        sockets = []
        for _ in range(MAX_CONNECTIONS):
            ws = await connect(url)
            json.loads(await ws.recv())  # welcome
            await ws.send(json.dumps({"type": "auth", "id": "a", "token": token}))
            assert json.loads(await ws.recv())["type"] == "result"
            await ws.send(json.dumps({"type": "subscribe", "id": "s", "user_id": "sib"}))
            assert json.loads(await ws.recv())["type"] == "result"
            sockets.append(ws)
            counts = gateway_pids(process.pid, port)
            if len(counts) == 2 and all(counts.values()):
                break
        assert len(counts) == 2 and all(counts.values()), counts
        async with MemoryClient(url, token) as writer:
            await writer.add("Shared by every gateway process", user_id="sib", infer=False)
        for ws in sockets:
            with anyio.fail_after(60):
                frame = json.loads(await ws.recv())
            assert frame["type"] == "event" and frame["seq"] == 1, frame
            assert frame["event"]["memory"] == "Shared by every gateway process"
            await ws.close()
        process.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(lambda: process.wait(timeout=120)) == 0
        assert not [p for p in psutil.process_iter(["cmdline"]) if "gateway-sibling.yaml" in " ".join(
            p.info["cmdline"] or []) and str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    finally:
        served.stop()
