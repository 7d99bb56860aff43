"""Disconnects: writers' and subscribers' connections are dropped at random points (server side
and client side) while turns are added through the gateway. Writers re-send with the same
``request_id``; subscribers resume with ``after_seq``. Afterwards: 0 gaps, 0 duplicates after
dedupe by seq, 0 double-applied adds (journal entries per request id == what its answer reported).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from contextlib import aclosing
from typing import Any

import anyio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.client import MemoryClient
from tests.gateway.conftest import raw_client, token
from tests.reliability.conftest import EngineGateway

WRITERS = 10
TURNS = 30
RAW_SUBSCRIBERS = 3  # resume by hand with after_seq, counting the duplicates the protocol allows


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
        except (ConnectionClosed, OSError):
            stats["subscriber_drops"] += 1
            await anyio.sleep(0.01)


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
    writing = [WRITERS]

    async def writer(user: str) -> None:
        async with MemoryClient(live.url, token([f"user:{user}"]), backoff_initial_s=0.02, backoff_max_s=0.2) as m:
            clients.append(m)
            for i in range(TURNS):
                request_id = f"{user}-{i}"
                answers[request_id] = await m.add(f"I visit the harbour of town {i} with {user}", user_id=user,
                                                  request_id=request_id)
        writing[0] -= 1

    async def follower(user: str) -> None:
        async with MemoryClient(live.url, token([f"user:{user}"]), backoff_initial_s=0.02, backoff_max_s=0.2) as m:
            clients.append(m)
            async with aclosing(m.subscribe(user_id=user)) as events:
                async for event in events:
                    client_seen[user].append(event.seq)
                    if user in final and event.seq >= final[user]:
                        return

    async def chaos() -> None:
        while writing[0] > 0:
            await anyio.sleep(rng.uniform(0.01, 0.08))
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
                    tg.start_soon(writer, user)
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
