"""Many WebSocket subscribers that cost the measured machine as little as possible.

The fan-out benchmark measures the gateway, but on a 2-core box its subscribers share the CPU
with it: 1,000 full ``MemoryClient`` instances (a reader task, a router and a queue each) spent
more time per event than the gateway did. So each subscriber here is an ``asyncio.Protocol``
driving websockets' Sans-I/O ``ClientProtocol`` through the handshake, the auth and the
subscribe; after that it only stamps and keeps the bytes it receives. The frames are parsed
after the run, by the same ``ClientProtocol``, and each event gets the arrival time of the chunk
that completed it. Subscribers are spread over a few processes.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri


class _Subscriber(asyncio.Protocol):
    def __init__(self, url: str, token: str, owner: str):
        self.ws = ClientProtocol(parse_uri(url))
        self.token, self.owner = token, owner
        self.transport: asyncio.Transport | None = None
        self.subscribed = asyncio.get_running_loop().create_future()
        self.recording = False
        self.chunks: list[tuple[float, bytes]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.recording:
            self.chunks.append((time.time(), data))
            return
        self.ws.receive_data(data)
        for frame in self.ws.events_received():
            self._on_setup_frame(frame)
        self._flush()

    def _on_setup_frame(self, frame: Any) -> None:
        if not isinstance(frame, Frame):  # the handshake's response
            self._send({"type": "auth", "id": "a", "token": self.token})
            return
        if frame.opcode is not Opcode.TEXT:
            return
        message = json.loads(frame.data)
        if message.get("id") == "a" and message["type"] == "result":
            user = self.owner.removeprefix("user:")
            self._send({"type": "subscribe", "id": "s", "user_id": user})
        elif message.get("id") == "s" and not self.subscribed.done():
            if message["type"] == "result":
                self.recording = True  # from here on: stamp and keep, parse later
                self.subscribed.set_result(None)
            else:
                self.subscribed.set_exception(RuntimeError(f"subscribe refused: {message}"))

    def _send(self, message: dict) -> None:
        self.ws.send_text(json.dumps(message).encode())
        self._flush()

    def _flush(self) -> None:
        for data in self.ws.data_to_send():
            if data and self.transport is not None:
                self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc or ConnectionError("closed before subscribing"))

    def arrivals(self) -> list[tuple[float, dict]]:
        """(arrival time, frame) of every frame received since subscribing."""
        out = []
        for stamp, data in self.chunks:
            self.ws.receive_data(data)
            for frame in self.ws.events_received():
                if isinstance(frame, Frame) and frame.opcode is Opcode.TEXT:
                    out.append((stamp, json.loads(frame.data)))
        return out


async def _host(url: str, token: str, owner: str, count: int, ready: Any, go: Any, events: int) -> list[float]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    subscribers: list[_Subscriber] = []
    limiter = asyncio.Semaphore(64)

    async def open_one() -> None:
        async with limiter:
            _, subscriber = await loop.create_connection(lambda: _Subscriber(url, token, owner),
                                                         parts.hostname, parts.port)
            await asyncio.wait_for(subscriber.subscribed, 120)
            subscribers.append(subscriber)

    await asyncio.gather(*(open_one() for _ in range(count)))
    ready.set()
    await loop.run_in_executor(None, go.wait)  # every subscriber of every process is in place
    deadline = loop.time() + 120
    while loop.time() < deadline and not all(_has_seq(s, events) for s in subscribers):
        await asyncio.sleep(0.05)  # a benchmark's polling of its own progress, not synchronisation of the product
    latencies = []
    for subscriber in subscribers:
        for stamp, frame in subscriber.arrivals():
            if frame.get("type") == "event":
                created = _epoch(frame["event"]["created_at"])
                latencies.append((stamp - created) * 1000)
        if subscriber.transport is not None:
            subscriber.transport.close()
    return latencies


def _has_seq(subscriber: _Subscriber, seq: int) -> bool:
    """Whether a recent chunk holds ``"seq":<seq>`` (a cheap check on raw bytes, no parsing)."""
    needle = f'"seq":{seq},'.encode()
    return any(needle in data for _, data in subscriber.chunks[-3:])


def _epoch(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp()


def _worker(url: str, token: str, owner: str, count: int, ready: Any, go: Any, events: int, out: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        out.send(asyncio.run(_host(url, token, owner, count, ready, go, events)))
    except Exception as exc:  # reported to the parent, which fails the run with it
        out.send(exc)


class SubscriberFleet:
    """``count`` subscribers of ``owner`` in ``processes`` processes; ``start`` returns once all
    are subscribed, ``latencies`` once each has received event ``events``."""

    def __init__(self, url: str, token: str, owner: str, count: int, events: int, processes: int = 2):
        ctx = multiprocessing.get_context("spawn")
        self.go = ctx.Event()
        self.readies, self.pipes, self.procs = [], [], []
        for i in range(processes):
            share = count // processes + (1 if i < count % processes else 0)
            ready = ctx.Event()
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(url, token, owner, share, ready, self.go, events, send),
                               daemon=True)
            self.readies.append(ready)
            self.pipes.append(receive)
            self.procs.append(proc)

    def start(self, timeout: float = 600) -> None:
        for proc in self.procs:
            proc.start()
        for ready, receive in zip(self.readies, self.pipes):
            while not ready.wait(1):
                if receive.poll():
                    raise RuntimeError(f"subscriber process failed: {receive.recv()}")
        self.go.set()

    def latencies(self) -> list[float]:
        out: list[float] = []
        for receive, proc in zip(self.pipes, self.procs):
            result = receive.recv()
            if isinstance(result, Exception):
                raise RuntimeError(f"subscriber process failed: {result}")
            out.extend(result)
            proc.join(timeout=30)
        return out
