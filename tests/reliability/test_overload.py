"""Overload: far more concurrent adds than the mailboxes hold, through the gateway.

The excess is refused explicitly (``error{code: "overloaded", retry_after_s}``: by the
connection's in-flight limit before ``accepted``, or by the owner's full mailbox after it, in
which case nothing is committed and the same request id may be retried); every add that was
not refused completes and is in the journal exactly once; the gateway process's memory stays
bounded; a client that keeps pushing after being refused is closed with 1013.
"""

from __future__ import annotations

import gc
import json
from collections import Counter

import anyio
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from runtime.config import Config
from runtime.engine import AsyncMemory
from tests.gateway.conftest import raw_client, token
from tests.reliability.conftest import RuleLLM, open_gateway

CONNECTIONS = 20
ADDS_PER_CONNECTION = 100
USERS = 4
MAX_RSS_GROWTH_MB = 200


async def test_excess_is_refused_explicitly_memory_stays_bounded_and_accepted_adds_complete(
        config: Config, embedder, figures):
    llm = RuleLLM(delay_s=0.05)  # an LLM call takes 50 ms: each owner's lane does < 10 adds/s
    capacity = config.memory.mailbox_capacity
    process = psutil.Process()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop, max_in_flight=32)
        outcome: dict[str, str] = {}  # request id -> result | overloaded-before-accepted | overloaded-after
        frames: Counter[str] = Counter()
        peak = [0]
        try:
            await memory.add("warm up", user_id="load-0", infer=False)
            gc.collect()
            base = process.memory_info().rss

            async def sample() -> None:
                while True:
                    peak[0] = max(peak[0], process.memory_info().rss)
                    await anyio.sleep(0.05)

            async def flood(c: int) -> None:
                async with connect(live.url, max_size=None) as ws:
                    await ws.recv()
                    await ws.send(json.dumps({"type": "auth", "id": "a", "token": token()}))
                    accepted: set[str] = set()
                    open_requests = {}
                    for i in range(ADDS_PER_CONNECTION):
                        request_id = f"load-{c}-{i}"
                        open_requests[i] = request_id
                        await ws.send(json.dumps({"type": "add", "id": i, "user_id": f"load-{(c + i) % USERS}",
                                                  "messages": f"I bake bread number {c} {i}",
                                                  "request_id": request_id}))
                    while open_requests:
                        frame = json.loads(await ws.recv())
                        frames[frame["type"]] += 1
                        if frame.get("id") == "a":
                            continue
                        if frame["type"] == "accepted":
                            accepted.add(frame["request_id"])
                            continue
                        request_id = open_requests.pop(frame["id"])
                        if frame["type"] == "result":
                            outcome[request_id] = "result"
                        else:
                            assert frame["code"] == "overloaded" and frame["retry_after_s"] > 0, frame
                            after = request_id in accepted
                            outcome[request_id] = "overloaded-after-accepted" if after else "overloaded"

            with anyio.fail_after(240):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sample)
                    async with anyio.create_task_group() as clients:
                        for c in range(CONNECTIONS):
                            clients.start_soon(flood, c)
                    tg.cancel_scope.cancel()
            counts = Counter(outcome.values())
            offered = CONNECTIONS * ADDS_PER_CONNECTION
            assert len(outcome) == offered  # every add got exactly one final answer
            assert counts["overloaded"] > 0 and counts["overloaded-after-accepted"] > 0, counts
            assert counts["result"] >= USERS * capacity, counts  # the mailboxes were full and worked off
            committed: Counter[str] = Counter()
            for u in range(USERS):
                log = await memory.history(user_id=f"load-{u}")
                assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
                committed.update(e["cause"] for e in log)
            completed = {r for r, o in outcome.items() if o == "result"}
            assert {r for r in committed if r is not None} == completed  # all that completed, nothing else
            assert all(committed[r] == 1 for r in completed)  # each completed add applied once
            assert not [r for r, o in outcome.items() if o != "result" and r in committed]  # refused: nothing
            growth_mb = (peak[0] - base) / 2**20
            assert growth_mb < MAX_RSS_GROWTH_MB, growth_mb
            # a client that ignores the refusals and keeps pushing is disconnected with 1013
            stop_strict = anyio.Event()
            strict, strict_task = await open_gateway(config, memory, llm, stop_strict, max_in_flight=1,
                                                     rate_per_s=1.0, rate_burst=1)
            try:
                ws, raw = await raw_client(strict.url, auth=token())
                with pytest.raises(ConnectionClosed):
                    for i in range(400):
                        await raw.send({"type": "search", "id": i, "query": "bread", "user_id": "load-1"})
                    while True:
                        await raw.recv(timeout=30)
                assert ws.close_code == 1013
            finally:
                stop_strict.set()
                await strict_task
        finally:
            stop.set()
            await task
    figures.record("overload", offered_adds=offered, connections=CONNECTIONS, owners=USERS,
                   mailbox_capacity=capacity, completed=counts["result"],
                   refused_before_accepted=counts["overloaded"],
                   refused_by_full_mailbox=counts["overloaded-after-accepted"],
                   lost=0, applied_twice=0, rss_growth_mb=round(growth_mb, 1),
                   rss_bound_mb=MAX_RSS_GROWTH_MB, strict_client_closed_with=1013)
