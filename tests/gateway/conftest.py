"""A live gateway over the real engine (embedded stores, MiniLM) with a scripted LLM.

``gateway`` runs in the test's event loop (async tests); ``threaded_gateway`` runs on a thread
of its own, for blocking callers: the sync client, hypothesis, the headless browser.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from anyio.from_thread import start_blocking_portal
from websockets.asyncio.client import connect

from gateway.auth import ALL_RIGHTS, mint_token
from gateway.server import Gateway
from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from tests.doubles import ScriptedLLM

SECRET = "test-secret-not-for-production-0123456789"


def gateway_config(config: Config, **settings: Any) -> Config:
    return msgspec.structs.replace(config, gateway=msgspec.structs.replace(config.gateway, port=0, **settings))


def token(owners: list[str] | None = None, rights: tuple[str, ...] | list[str] = ALL_RIGHTS, tenant: str = "default",
          ttl_s: int = 3600, secret: str = SECRET, now: float | None = None) -> str:
    return mint_token(secret, tenant=tenant, owners=owners or ["*"], rights=rights, ttl_s=ttl_s, now=now)


class LiveGateway:
    def __init__(self, gateway: Gateway, memory: AsyncMemory):
        self.gateway = gateway
        self.memory = memory
        self.url = f"ws://127.0.0.1:{gateway.port}/ws"
        self.http = f"http://127.0.0.1:{gateway.port}"


class _Listening:
    """The ``task_status`` handed to ``Gateway.serve``: set once the gateway listens."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def started(self, value: Any = None) -> None:
        self.event.set()


async def start_gateway(config: Config, memory: Any, stop: anyio.Event) -> tuple[Gateway, asyncio.Task]:
    """Serve in a task of this event loop; returns once the gateway listens (or raises what kept it
    from listening), waiting on the gateway's own signal rather than polling for its port."""
    gateway = Gateway(config, memory, secret=SECRET)
    listening = _Listening()
    task = asyncio.create_task(gateway.serve(stop, task_status=listening))
    waiter = asyncio.create_task(listening.event.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not listening.event.is_set():
        waiter.cancel()
        task.result()  # raises why serve() ended before it listened
        raise AssertionError("the gateway stopped before it listened")
    return gateway, task


@asynccontextmanager
async def running_gateway(config: Config, memory: Any, **settings: Any) -> AsyncIterator[Gateway]:
    """A gateway over ``memory`` in this event loop, with these ``gateway`` settings."""
    stop = anyio.Event()
    gateway, task = await start_gateway(gateway_config(config, **settings), memory, stop)
    try:
        yield gateway
    finally:
        stop.set()
        await task


@pytest.fixture
async def live(config: Config, embedder, llm: ScriptedLLM) -> AsyncIterator[LiveGateway]:
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        stop = anyio.Event()
        gateway, task = await start_gateway(gateway_config(config, heartbeat_s=30.0), memory, stop)
        try:
            yield LiveGateway(gateway, memory)
        finally:
            stop.set()
            await task


class RawClient:
    """A bare protocol speaker: frames as dicts, for tests of what the server answers."""

    def __init__(self, ws: Any):
        self.ws = ws

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    # the timeouts are safety nets for a hang, not waits: generous for a busy 2-core box
    async def recv(self, timeout: float = 30.0) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            raw = await self.ws.recv()
        return json.loads(raw) if isinstance(raw, str) else msgspec.msgpack.decode(raw)

    async def until(self, kind: str, frame_id: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """Skip frames until one of ``kind`` (with ``id``) arrives."""
        with anyio.fail_after(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == kind and (frame_id is None or frame.get("id") == frame_id):
                    return frame

    async def call(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its result or error frame."""
        await self.send(frame)
        while True:
            answer = await self.recv()
            if answer.get("id") == frame["id"] and answer["type"] in ("result", "error", "pong"):
                return answer


async def raw_client(url: str, auth: str | None = None, **connect_options: Any) -> tuple[Any, RawClient]:
    ws = await connect(url, **connect_options)
    client = RawClient(ws)
    welcome = await client.recv()
    assert welcome["type"] == "welcome"
    if auth is not None:
        answer = await client.call({"type": "auth", "id": "auth", "token": auth})
        assert answer["type"] == "result", answer
    return ws, client


@contextmanager
def serving_on(portal: Any, config: Config, memory: Any) -> Iterator[Gateway]:
    """Run a gateway over ``memory`` on the portal's event loop (a thread of its own)."""
    stop = portal.call(anyio.Event)
    started = threading.Event()
    gateway = Gateway(config, memory, secret=SECRET)

    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(gateway.serve, stop)
            started.set()

    future = portal.start_task_soon(serve)
    assert started.wait(30), "gateway did not start"
    try:
        yield gateway
    finally:
        portal.call(stop.set)
        future.result(timeout=60)


@pytest.fixture
def threaded_gateway(tmp_path: Path, embedder) -> Iterator[LiveGateway]:
    """The gateway on its own thread and event loop, for blocking callers."""
    config = gateway_config(load_config("test", overrides={"data_dir": str(tmp_path / "data")}, environ={}))
    with start_blocking_portal() as portal:
        memory = portal.call(_open_memory, config, embedder)
        try:
            with serving_on(portal, config, memory) as gateway:
                live = LiveGateway(gateway, memory)
                live.portal = portal  # type: ignore[attr-defined]
                yield live
        finally:
            portal.call(memory.close)


class NoFactsLLM:
    """Finds nothing to remember in any turn: adds with inference commit nothing, quickly."""

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        return json.dumps({"facts": []})

    async def close(self) -> None:
        return None


async def _open_memory(config: Config, embedder) -> AsyncMemory:
    return await AsyncMemory(config, llm=NoFactsLLM(), embedder=embedder).open()
