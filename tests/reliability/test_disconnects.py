"""Disconnects: writers' and subscribers' connections are dropped at random points (server side
and client side) while turns are added through the gateway. Writers re-send with the same
``request_id``; subscribers resume with ``after_seq``. Afterwards: 0 gaps, 0 duplicates after
dedupe by seq, 0 double-applied adds (journal entries per request id == what its answer reported).

A drop storm cuts handshakes too: a client between the upgrade and its auth answer loses its
connection like any other. The tests after the storm pin that down without timing: the client
dials again within its budget, and the server keeps admitting new connections while the cut
ones finish their work.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from contextlib import aclosing
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gateway.client import MemoryClient
from runtime.config import Config
from runtime.engine import AsyncMemory
from runtime.errors import BackendUnavailable
from tests.gateway.conftest import raw_client, token
from tests.reliability.conftest import EngineGateway, open_gateway

WRITERS = 10
TURNS = 30
RAW_SUBSCRIBERS = 3  # resume by hand with after_seq, counting the duplicates the protocol allows
CUT_EVERY = 9  # the storm cuts one connection after every 1..CUT_EVERY answered adds (at least 300/9 cuts)


async def raw_follower(url: str, user: str, final: dict[str, int], received: list[int], stats: Counter) -> None:
    """A bare protocol subscriber: on every drop it reconnects and resubscribes after the last seq
    it holds; it keeps every seq it was sent (duplicates included)."""
    last = 0
    while True:
        try:
            async with connect(url, max_size=None) as ws:
                await ws.recv()  # welcome
                await ws.send(json.dumps({"type": "auth", "id": "a", "token": token([f"user:{user}"])}))
                await ws.send(json.dumps({"type": "subscribe", "id": "s", "user_id": user, "after_seq": last}))
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame["type"] == "event":
                        received.append(frame["seq"])
                        last = max(last, frame["seq"])
                    elif frame["type"] == "resync_required":
                        stats["resyncs"] += 1
                        await ws.send(json.dumps({"type": "subscribe", "id": f"s{last}", "user_id": user,
                                                  "after_seq": last}))
                    if user in final and last >= final[user]:
                        return
        except (ConnectionClosed, InvalidHandshake, OSError):  # a cut handshake is a drop like any other
            stats["subscriber_drops"] += 1
            await anyio.sleep(0.01)  # a reconnect backoff, not a wait for anything


async def test_random_drops_lose_nothing_and_apply_nothing_twice(rule_gateway: EngineGateway, figures):
    live = rule_gateway
    rng = random.Random(7)
    users = [f"drop-user-{w}" for w in range(WRITERS)]
    answers: dict[str, dict[str, Any]] = {}
    stats: Counter[str] = Counter()
    final: dict[str, int] = {}
    client_seen: dict[str, list[int]] = {u: [] for u in users}
    raw_seen: dict[str, list[int]] = {u: [] for u in users[:RAW_SUBSCRIBERS]}
    clients: list[MemoryClient] = []
    answered, progress = anyio.create_memory_object_stream[None](WRITERS * TURNS)

    async def writer(user: str, report: Any) -> None:
        async with report, MemoryClient(live.url, token([f"user:{user}"]), backoff_initial_s=0.02,
                                        backoff_max_s=0.2) as m:
            clients.append(m)
            for i in range(TURNS):
                request_id = f"{user}-{i}"
                answers[request_id] = await m.add(f"I visit the harbour of town {i} with {user}", user_id=user,
                                                  request_id=request_id)
                report.send_nowait(None)

    async def follower(user: str) -> None:
        async with MemoryClient(live.url, token([f"user:{user}"]), backoff_initial_s=0.02, backoff_max_s=0.2) as m:
            clients.append(m)
            async with aclosing(m.subscribe(user_id=user)) as events:
                async for event in events:
                    client_seen[user].append(event.seq)
                    if user in final and event.seq >= final[user]:
                        return

    async def chaos() -> None:
        """One cut after every 1..CUT_EVERY answered adds, until the writers are done: the size of
        the storm follows the work done, not how fast this machine happens to be."""
        async with progress:
            countdown = rng.randint(1, CUT_EVERY)
            async for _ in progress:
                countdown -= 1
                if countdown == 0:
                    countdown = rng.randint(1, CUT_EVERY)
                    cut()

    def cut() -> None:
        if rng.random() < 0.6:  # the server drops a random connection (no close frame)
            connections = list(live.gateway.connections)
            if connections:
                rng.choice(connections).ws.transport.abort()
                stats["server_aborts"] += 1
        else:  # a client's socket dies under it
            connected = [c for c in clients if c._ws is not None]
            if connected:
                rng.choice(connected)._ws.transport.abort()
                stats["client_aborts"] += 1

    with anyio.fail_after(180):
        async with anyio.create_task_group() as readers:
            for user in users:
                readers.start_soon(follower, user)
            for user in raw_seen:
                readers.start_soon(raw_follower, live.url, user, final, raw_seen[user], stats)
            async with anyio.create_task_group() as tg:
                tg.start_soon(chaos)
                for user in users:
                    tg.start_soon(writer, user, answered.clone())
                answered.close()  # the writers' clones remain: the storm ends when the last writer is done
            # followers stop once they hold the final seq: one more change after the writers', so that
            # none is left waiting for a live event it has already seen
            for user in users:
                final[user] = await live.memory.head(user_id=user) + 1
                await live.memory.add("closing note", user_id=user, infer=False, request_id=f"{user}-close")

    duplicates = gaps = 0
    for user in users:
        log = await live.memory.history(user_id=user)
        assert [e["seq"] for e in log] == list(range(1, final[user] + 1))
        by_cause = Counter(e["cause"] for e in log)
        for i in range(TURNS):
            request_id = f"{user}-{i}"
            reported = len(answers[request_id]["results"])
            assert by_cause[request_id] == reported >= 1, (request_id, by_cause[request_id], answers[request_id])
        assert client_seen[user] == list(range(1, final[user] + 1)), user  # MemoryClient: once, in order
    for user, received in raw_seen.items():
        deduped = sorted(set(received))
        duplicates += len(received) - len(deduped)
        gaps += final[user] - len(deduped)
        assert deduped == list(range(1, final[user] + 1)), user
        assert [s for i, s in enumerate(received) if s > max(received[:i], default=0)] == deduped  # in order
    reconnects = sum(c.reconnects for c in clients)
    assert stats["server_aborts"] + stats["client_aborts"] >= 10 and reconnects >= 5, (stats, reconnects)
    figures.record("disconnects", writers=WRITERS, adds=WRITERS * TURNS, adds_completed=len(answers),
                   server_aborts=stats["server_aborts"], client_aborts=stats["client_aborts"],
                   client_reconnects=reconnects, raw_subscriber_drops=stats["subscriber_drops"],
                   raw_duplicates_received=duplicates, gaps=gaps, duplicates_after_dedupe=0,
                   double_applied=0, lost=WRITERS * TURNS - len(answers))


async def test_a_writer_dropped_before_or_after_accepted_resends_and_is_applied_once(rule_gateway: EngineGateway):
    live = rule_gateway
    auth = token(["user:dropper"])
    for n, wait_for_accepted in enumerate((False, True)):
        request_id = f"drop-{n}"
        frame = {"type": "add", "id": 1, "messages": f"I keep bees in hive {n}", "user_id": "dropper",
                 "request_id": request_id}
        ws, raw = await raw_client(live.url, auth=auth)
        await raw.send(frame)
        if wait_for_accepted:
            assert (await raw.recv())["type"] == "accepted"
        ws.transport.abort()  # gone without a close frame, the answer undelivered
        ws, raw = await raw_client(live.url, auth=auth)
        again = await raw.call({**frame, "id": 2})
        assert again["type"] == "result", again
        once_more = await raw.call({**frame, "id": 3})
        assert once_more["data"] == again["data"]
        await ws.close()
        history = await live.memory.history(user_id="dropper")
        assert sum(e["cause"] == request_id for e in history) == len(again["data"]["results"]) == 1
    assert await live.memory.head(user_id="dropper") == 2


# ---- handshakes cut by the storm ------------------------------------------------------------
class CutOnArrival(set):
    """Stands in for the gateway's set of connections and cuts (no close frame) the next ``cuts``
    connections as they arrive, before their welcome: what a drop storm does to a client that is
    between the upgrade and its auth answer. ``arrived`` counts every connection the server took."""

    def __init__(self, cuts: int, connections: set[Any]):
        super().__init__(connections)
        self.cuts = cuts
        self.arrived = 0

    def add(self, connection: Any) -> None:
        super().add(connection)
        self.arrived += 1
        if self.cuts > 0:
            self.cuts -= 1
            connection.ws.transport.abort()


def cut_handshakes(live: EngineGateway, cuts: int) -> CutOnArrival:
    live.gateway.connections = CutOnArrival(cuts, live.gateway.connections)
    return live.gateway.connections


async def test_a_client_whose_handshakes_are_cut_dials_again_within_its_budget(rule_gateway: EngineGateway):
    """The storm test's flake: ``open`` gave up on the first cut handshake (``BackendUnavailable: ...
    did not complete the handshake: ConnectionClosedError(None, None, None)``)."""
    live = rule_gateway
    arrivals = cut_handshakes(live, cuts=3)
    async with MemoryClient(live.url, token(["user:cut"]), backoff_initial_s=0.01, connect_attempts=4) as client:
        assert await client.ping() > 0
    assert arrivals.arrived == 4  # three cut, the fourth served

    arrivals = cut_handshakes(live, cuts=1_000)
    with pytest.raises(BackendUnavailable, match="after 3 attempts.*did not complete the handshake"):
        await MemoryClient(live.url, token(["user:cut"]), backoff_initial_s=0.01, connect_attempts=3).open()
    assert arrivals.arrived == 3  # the budget is a count of tries, whatever the clock says


async def test_a_reconnect_whose_handshakes_are_cut_keeps_dialling_within_its_budget(rule_gateway: EngineGateway):
    live = rule_gateway
    auth = token(["user:recut"])
    async with MemoryClient(live.url, auth, backoff_initial_s=0.01, max_reconnect_attempts=4) as client:
        await client.ping()
        arrivals = cut_handshakes(live, cuts=3)
        client._ws.transport.abort()  # the live connection drops; the next three handshakes are cut too
        added = await client.add("I dial again", user_id="recut", infer=False, request_id="recut-1")
        assert added["results"] and client.reconnects == 1 and arrivals.arrived == 4

    async with MemoryClient(live.url, auth, backoff_initial_s=0.01, max_reconnect_attempts=2) as client:
        await client.ping()
        arrivals = cut_handshakes(live, cuts=1_000)
        client._ws.transport.abort()
        with pytest.raises(BackendUnavailable, match="after 2 attempts"):
            await client.ping()
        assert client.reconnects == 0 and arrivals.arrived == 2
    assert await live.memory.head(user_id="recut") == 1


async def test_the_gateway_admits_new_connections_while_cut_ones_finish_their_work(config: Config, embedder):
    """``max_connections`` counts open sockets: a connection cut while an accepted add runs stays
    until the add is done, and the client that lost it must be able to dial back in meanwhile."""
    llm = HeldLLM()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop, max_connections=3)
        try:
            for n in range(3):  # three connections, each with an add in flight (the LLM holds it)
                ws, raw = await raw_client(live.url, auth=token())
                await raw.send({"type": "add", "id": n, "messages": f"held {n}", "user_id": "held",
                                "request_id": f"held-{n}"})
                assert (await raw.recv())["type"] == "accepted"
            for connection in list(live.gateway.connections):
                connection.ws.transport.abort()
                await connection.ws.wait_closed()
            assert len(live.gateway.connections) == 3  # cut, but still finishing the adds

            fresh = [await raw_client(live.url, auth=token()) for _ in range(3)]  # all three dial back in
            with pytest.raises(InvalidStatus, match="503"):  # three open sockets: the limit still holds
                await connect(live.url)
            llm.release.set()
            for n, (ws, raw) in enumerate(fresh):  # each re-sends its add: answered once, applied once
                answer = await raw.call({"type": "add", "id": n, "messages": f"held {n}", "user_id": "held",
                                         "request_id": f"held-{n}"})
                assert answer["type"] == "result", answer
                await ws.close()
            assert llm.calls == 3
        finally:
            llm.release.set()
            stop.set()
            await task


class HeldLLM:
    """Finds no facts, but only once ``release`` is set: keeps adds in flight for as long as a test needs."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.calls = 0

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        self.calls += 1
        await self.release.wait()
        return json.dumps({"facts": []})

    async def close(self) -> None:
        return None
