"""The gateway end to end: a real websockets server over the real engine, real clients."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from contextlib import aclosing

import anyio
import msgspec
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.client import MemoryClient
from gateway.keepalive import ClientSocket, GatewayConnection
from runtime.errors import Forbidden, NotFound, Unauthenticated
from runtime.model import MemoryAdded, MemoryDeleted, MemoryUpdated
from tests.gateway.conftest import LiveGateway, gateway_config, raw_client, running_gateway, start_gateway, token


async def test_welcome_ping_and_requests_before_auth(live: LiveGateway):
    ws, raw = await raw_client(live.url)
    async with ws:
        assert (await raw.call({"type": "ping", "id": 1}))["type"] == "pong"
        refused = await raw.call({"type": "search", "id": 2, "query": "tea", "user_id": "alice"})
        assert refused["type"] == "error" and refused["code"] == "unauthenticated"
        assert "auth" in refused["message"]
        ok = await raw.call({"type": "auth", "id": 3, "token": token(["user:alice"])})
        assert ok["type"] == "result" and ok["data"]["tenant"] == "default"
        found = await raw.call({"type": "search", "id": 4, "query": "tea", "user_id": "alice"})
        assert found == {"type": "result", "id": 4, "data": {"results": []}}


@pytest.mark.parametrize("bad_token,why", [
    (token(secret="another-secret-that-is-long-enough-for-hs256"), "Signature verification failed"),
    (token(ttl_s=10, now=time.time() - 3600), "token expired"),
    ("not-a-jwt", "invalid token"),
])
async def test_forged_expired_and_garbage_tokens_are_refused(live: LiveGateway, bad_token: str, why: str):
    ws, raw = await raw_client(live.url)
    async with ws:
        answer = await raw.call({"type": "auth", "id": "a", "token": bad_token})
        assert answer["type"] == "error" and answer["code"] == "unauthenticated" and why in answer["message"]
        assert (await raw.call({"type": "get_all", "id": "b", "user_id": "alice"}))["code"] == "unauthenticated"
    with pytest.raises(Unauthenticated):
        await MemoryClient(live.url, bad_token).open()


async def test_add_is_accepted_at_once_then_answered(live: LiveGateway):
    ws, raw = await raw_client(live.url, auth=token(["user:alice"]))
    async with ws:
        await raw.send({"type": "add", "id": "x1", "messages": "I like green tea", "user_id": "alice",
                        "infer": False})
        accepted = await raw.recv()
        assert accepted["type"] == "accepted" and accepted["id"] == "x1" and accepted["request_id"]
        result = await raw.until("result", "x1")
        assert result["data"]["results"][0]["event"] == "ADD"
        # the same request id again is answered from the journal, not applied twice
        again = await raw.call({"type": "add", "id": "x2", "messages": "I like green tea", "user_id": "alice",
                                "infer": False, "request_id": accepted["request_id"]})
        assert again["data"] == result["data"]
    assert await live.memory.head(user_id="alice") == 1


async def test_every_memory_operation_through_the_client(live: LiveGateway, llm):
    llm.push({"facts": ["Is allergic to peanuts", "Works as a data engineer"]})
    async with MemoryClient(live.url, token(["user:alice"])) as client:
        added = await client.add([{"role": "user", "content": "I'm allergic to peanuts and I work as a data "
                                                              "engineer"}], user_id="alice", metadata={"src": "t"})
        assert [r["event"] for r in added["results"]] == ["ADD", "ADD"]
        memories = (await client.get_all(user_id="alice"))["results"]
        assert sorted(m["memory"] for m in memories) == ["Is allergic to peanuts", "Works as a data engineer"]
        found = await client.search("food allergy", user_id="alice", limit=1)
        assert found["results"][0]["memory"] == "Is allergic to peanuts"
        peanut = found["results"][0]["id"]
        assert (await client.get(peanut))["metadata"] == {"src": "t"}
        await client.update(peanut, "Is allergic to peanuts and cashews")
        assert (await client.get(peanut))["memory"] == "Is allergic to peanuts and cashews"
        assert [h["event"] for h in await client.history(peanut)] == ["ADD", "UPDATE"]
        assert [h["seq"] for h in await client.history(user_id="alice", since_seq=1)] == [2, 3]
        await client.delete(peanut)
        with pytest.raises(NotFound):
            await client.get(peanut)
        assert (await client.delete_all(user_id="alice"))["deleted"] == 1
        assert await client.head(user_id="alice") == 5
        assert (await client.get_all(user_id="alice", as_of=2))["results"][0]["memory"] in (
            "Is allergic to peanuts", "Works as a data engineer")
        assert await client.ping() > 0
        with pytest.raises(Forbidden, match="admin"):
            await client.reset()
    async with MemoryClient(live.url, token(rights=["admin"])) as admin:
        await admin.add("Another user's memory", user_id="someone", infer=False)
        assert (await admin.reset())["deleted"] == 1
        assert (await admin.get_all(user_id="alice"))["results"] == []

async def test_search_modes_over_the_wire(live: LiveGateway):
    async with MemoryClient(live.url, token(["user:cy"])) as client:
        await client.add([{"role": "user", "content": t} for t in ("Cy repairs vintage radios", "Cy likes jazz")],
                         user_id="cy", infer=False)
        for mode in ("dense", "sparse", "hybrid", None):
            found = await client.search("who repairs radios?", user_id="cy", limit=1, mode=mode)
            assert [r["memory"] for r in found["results"]] == ["Cy repairs vintage radios"], mode
        sparse = await client.search("radios", user_id="cy", mode="sparse")
        assert [r["memory"] for r in sparse["results"]] == ["Cy repairs vintage radios"]  # no shared word, no hit
    ws, raw = await raw_client(live.url, auth=token(["user:cy"]))
    async with ws:
        answer = await raw.call({"type": "search", "id": 1, "query": "q", "user_id": "cy", "mode": "keyword"})
        assert answer["type"] == "error" and answer["code"] == "invalid_frame"


async def test_msgpack_subprotocol(live: LiveGateway):
    async with MemoryClient(live.url, token(["user:bob"]), binary=True) as client:
        await client.add("Bob plays the cello", user_id="bob", infer=False)
        assert (await client.search("music", user_id="bob"))["results"][0]["memory"] == "Bob plays the cello"
    ws, raw = await raw_client(live.url, subprotocols=["memstream.msgpack"])
    async with ws:
        assert ws.subprotocol == "memstream.msgpack"
        await ws.send(msgspec.msgpack.encode({"type": "ping", "id": 7}))
        assert (await raw.recv())["type"] == "pong"


async def test_subscription_replays_then_streams_live_without_gap(live: LiveGateway):
    for i in range(5):
        await live.memory.add(f"fact number {i}", user_id="carol", infer=False)
    async with MemoryClient(live.url, token(["user:carol"])) as client:
        seen: list[int] = []
        async with aclosing(client.subscribe(user_id="carol", after_seq=2)) as events:
            async for event in events:
                seen.append(event.seq)
                if event.seq == 5:
                    await client.add("fact number 5", user_id="carol", infer=False)
                    await client.add("fact number 6", user_id="carol", infer=False)
                if event.seq == 7:
                    break
        assert seen == [3, 4, 5, 6, 7]


async def test_events_of_update_and_delete_have_their_types(live: LiveGateway):
    async with MemoryClient(live.url, token(["user:dan"])) as client:
        added = await client.add("Dan lives in Rome", user_id="dan", infer=False)
        memory_id = added["results"][0]["id"]
        await client.update(memory_id, "Dan lives in Milan")
        await client.delete(memory_id)
        kinds = []
        async with aclosing(client.subscribe(user_id="dan")) as events:
            async for event in events:
                kinds.append(type(event))
                if len(kinds) == 3:
                    break
        assert kinds == [MemoryAdded, MemoryUpdated, MemoryDeleted]


async def test_client_reconnects_resends_and_resumes_its_subscription(live: LiveGateway):
    async with MemoryClient(live.url, token(["user:erin"]), backoff_initial_s=0.05) as client:
        seqs: list[int] = []
        done = anyio.Event()

        async def watch() -> None:
            async with aclosing(client.subscribe(user_id="erin")) as events:
                async for event in events:
                    seqs.append(event.seq)
                    if event.seq == 20:
                        done.set()
                        return

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            for i in range(20):
                if i in (5, 12):  # the server side drops the connection mid-stream
                    for connection in list(live.gateway.connections):
                        connection.ws.transport.abort()
                await client.add(f"erin fact {i}", user_id="erin", infer=False, request_id=f"erin-{i}")
            with anyio.fail_after(30):
                await done.wait()
        assert seqs == list(range(1, 21))
        assert client.reconnects >= 2
    assert await live.memory.head(user_id="erin") == 20  # nothing applied twice


async def test_keepalive_pings_leave_the_global_random_alone(live: LiveGateway):
    """websockets makes up a keepalive ping's payload with the global ``random`` module, from the
    thread of the event loop; the gateway's and the client's pings carry a counter instead, so an
    application's (or Hypothesis') random sequence is its own, whatever thread serves the socket."""
    state = random.getstate()
    async with MemoryClient(live.url, token(["user:pinger"])) as client:
        await client.ping()
        (connection,) = live.gateway.connections
        assert isinstance(connection.ws, GatewayConnection) and isinstance(client._ws, ClientSocket)
        for _ in range(3):  # what the keepalive does every ping_interval, on both sides
            assert await (await connection.ws.ping()) >= 0
            assert await (await client._ws.ping()) >= 0
    assert random.getstate() == state


async def test_tenant_and_owner_isolation_and_rights(live: LiveGateway):
    bobs = await live.memory.add("Bob's secret plan", user_id="bob", infer=False)
    bob_memory = bobs["results"][0]["id"]
    other_tenant = await live.memory.add("tenant B data", user_id="bob", infer=False, tenant="tenant-b")
    async with MemoryClient(live.url, token(["user:alice"])) as alice:
        for call in (alice.search("plan", user_id="bob"), alice.get_all(user_id="bob"), alice.head(user_id="bob"),
                     alice.add("hi", user_id="bob", infer=False), alice.delete_all(user_id="bob"),
                     alice.history(user_id="bob"), alice.get(bob_memory), alice.update(bob_memory, "mine now"),
                     alice.delete(bob_memory), alice.history(bob_memory)):
            with pytest.raises(Forbidden):
                await call
        with pytest.raises(Forbidden):
            async with aclosing(alice.subscribe(user_id="bob")) as events:
                async for _ in events:
                    break
    async with MemoryClient(live.url, token(["*"], tenant="tenant-a")) as tenant_a:
        with pytest.raises(NotFound):  # another tenant's memory does not exist here
            await tenant_a.get(other_tenant["results"][0]["id"])
        assert (await tenant_a.get_all(user_id="bob"))["results"] == []
    async with MemoryClient(live.url, token(["user:bob"], rights=["read"])) as reader:
        assert (await reader.get(bob_memory))["memory"] == "Bob's secret plan"
        for call in (reader.add("x", user_id="bob", infer=False), reader.update(bob_memory, "y"),
                     reader.delete(bob_memory), reader.delete_all(user_id="bob")):
            with pytest.raises(Forbidden):
                await call
    assert (await live.memory.get(bob_memory))["memory"] == "Bob's secret plan"


async def test_bad_frames_get_clear_errors_and_the_connection_keeps_working(live: LiveGateway):
    ws, raw = await raw_client(live.url, auth=token())
    async with ws:
        cases = [
            ("{not json", "bad_frame", None),
            (json.dumps({"type": "teleport", "id": 1}), "invalid_frame", 1),
            (json.dumps({"type": "search", "id": 2, "user_id": "a"}), "invalid_frame", 2),  # missing query
            (json.dumps({"type": "search", "id": 3, "query": 5, "user_id": "a"}), "invalid_frame", 3),
            (json.dumps({"type": "get", "id": 4, "memory_id": "x", "extra": 1}), "invalid_frame", 4),
            (json.dumps([1, 2, 3]), "invalid_frame", None),
            ("[" * 100000 + "]" * 100000, "invalid_frame", None),
            ('{"type": "add", "id": 8, "messages": "x", "user_id": "a", "metadata": {"a": ' + "[" * 100000
             + "]" * 100000 + "}}", "bad_frame", None),
            (json.dumps({"type": "search", "id": 5, "query": "q"}), "invalid_request", 5),  # no scope
            (json.dumps({"type": "get_all", "id": 6, "user_id": "a", "filters": {"$where": "1"}}),
             "invalid_request", 6),
        ]
        for frame, code, frame_id in cases:
            await ws.send(frame)
            answer = await raw.recv()
            assert answer["type"] == "error" and answer["code"] == code, (frame[:60], answer)
            assert answer.get("id") == frame_id
            assert answer["message"]
        await ws.send(b"\xc1\xff garbage")  # binary frames are MessagePack
        assert (await raw.recv())["code"] == "bad_frame"
        assert (await raw.call({"type": "ping", "id": "still-alive"}))["type"] == "pong"


async def test_oversized_frames_close_with_1009_and_invalid_utf8_with_1007(config, embedder, llm):
    from runtime.engine import AsyncMemory

    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        async with running_gateway(config, memory, max_frame_bytes=4096) as gateway:
            url = f"ws://127.0.0.1:{gateway.port}/ws"
            ws, raw = await raw_client(url, auth=token())
            await ws.send(json.dumps({"type": "add", "id": 1, "messages": "x" * 10000, "user_id": "a"}))
            with pytest.raises(ConnectionClosed):
                await raw.recv()
            assert ws.close_code == 1009
            ws, raw = await raw_client(url)
            await ws.send(b"\xff\xfe not utf-8", text=True)
            with pytest.raises(ConnectionClosed):
                await raw.recv()
            assert ws.close_code == 1007
            ws, raw = await raw_client(url)  # the server is fine
            assert (await raw.call({"type": "ping", "id": 1}))["type"] == "pong"
            await ws.close()


async def test_in_flight_and_rate_limits_answer_overloaded(config, embedder, llm):
    from runtime.engine import AsyncMemory

    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        settings = dict(max_in_flight=2, rate_per_s=20.0, rate_burst=5)
        async with running_gateway(config, memory, **settings) as gateway:
            ws, raw = await raw_client(f"ws://127.0.0.1:{gateway.port}/ws", auth=token())
            for i in range(12):
                await raw.send({"type": "search", "id": i, "query": "anything", "user_id": "a"})
            answers = [await raw.recv() for _ in range(12)]
            refused = [a for a in answers if a["type"] == "error"]
            assert refused and all(a["code"] == "overloaded" and a["retry_after_s"] > 0 for a in refused)
            assert any(a["type"] == "result" for a in answers)
            await anyio.sleep(0.5)
            assert (await raw.call({"type": "search", "id": "later", "query": "x", "user_id": "a"}))["type"] == \
                "result"
            await ws.close()


async def test_graceful_shutdown_finishes_accepted_adds_then_closes_1001(config, embedder):
    from runtime.engine import AsyncMemory

    class SlowLLM:
        async def complete_json(self, messages, schema, *, name):
            await anyio.sleep(0.3)
            return json.dumps({"facts": [messages[-1]["content"].split(":", 1)[-1].strip()]})

        async def close(self):
            return None

    async with AsyncMemory(config, llm=SlowLLM(), embedder=embedder) as memory:
        stop = anyio.Event()
        gateway, task = await start_gateway(gateway_config(config), memory, stop)
        ws, raw = await raw_client(f"ws://127.0.0.1:{gateway.port}/ws", auth=token())
        turns = [f"user: I collect stamp number {i}" for i in range(5)]
        for i, turn in enumerate(turns):
            await raw.send({"type": "add", "id": i, "messages": turn, "user_id": f"gina{i}"})
        accepted = [await raw.until("accepted", i) for i in range(5)]
        assert len(accepted) == 5
        stop.set()
        results = {}
        with pytest.raises(ConnectionClosed):
            while True:
                frame = await raw.recv(timeout=30)
                if frame["type"] in ("result", "error"):
                    results[frame["id"]] = frame
        await task
        assert ws.close_code == 1001
        assert sorted(results) == [0, 1, 2, 3, 4]
        assert all(r["type"] == "result" for r in results.values()), results
        for i in range(5):
            assert len((await memory.get_all(user_id=f"gina{i}"))["results"]) == 1


async def test_slow_subscriber_is_cut_off_with_resync_and_never_slows_writers(config, embedder, llm):
    N = 300
    from runtime.engine import AsyncMemory

    config = msgspec.structs.replace(config, memory=msgspec.structs.replace(config.memory, subscriber_queue=8))
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        # no keepalive: a client that reads nothing cannot answer pings, and on a busy machine the
        # writer's 300 adds outlast a ping timeout (the cut-off under test is resync, not keepalive)
        async with running_gateway(config, memory, outbound_queue=8, ping_interval_s=None) as gateway:
            url = f"ws://127.0.0.1:{gateway.port}/ws"
            slow_ws, slow = await raw_client(url, auth=token(), max_size=None, ping_interval=None)
            await slow.call({"type": "subscribe", "id": "s", "user_id": "hal"})
            # the slow subscriber now reads nothing while a writer adds large memories
            big = "a long memory about many things " * 900  # ~29 KB per event
            # a writer stuck behind the subscriber would never finish: the timeout is that hang's safety net
            with anyio.fail_after(300):
                async with MemoryClient(url, token()) as writer:
                    for i in range(N):
                        await writer.add(f"{i} {big}", user_id="hal", infer=False)
            assert await memory.head(user_id="hal") == N
            frames = []
            while True:
                frame = await slow.recv(timeout=30)
                frames.append(frame)
                if frame["type"] == "resync_required":
                    break
            seqs = [f["seq"] for f in frames if f["type"] == "event"]
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < N
            assert frames[-1]["from_seq"] == (seqs[-1] if seqs else 0)
            # resuming from from_seq yields exactly the rest
            await slow.send({"type": "subscribe", "id": "s2", "user_id": "hal", "after_seq": frames[-1]["from_seq"]})
            rest = []
            while len(rest) < N - len(seqs):
                frame = await slow.recv(timeout=30)
                if frame["type"] == "event":
                    rest.append(frame["seq"])
            assert rest == list(range(len(seqs) + 1, N + 1))
            await slow_ws.close()


async def test_heartbeats_carry_the_head_seq(config, embedder, llm):
    from runtime.engine import AsyncMemory

    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        await memory.add("one", user_id="ivy", infer=False)
        await memory.add("two", user_id="ivy", infer=False)
        async with running_gateway(config, memory, heartbeat_s=0.2) as gateway:
            ws, raw = await raw_client(f"ws://127.0.0.1:{gateway.port}/ws", auth=token())
            answer = await raw.call({"type": "subscribe", "id": "s", "user_id": "ivy", "after_seq": 2})
            assert answer["data"]["head"] == 2
            beat = await raw.until("heartbeat")
            assert beat == {"type": "heartbeat", "subscription": "s", "owner": "user:ivy", "head": 2}
            await ws.close()


async def test_allowed_origins_and_connection_limit(config, embedder, llm):
    from runtime.engine import AsyncMemory

    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        settings = dict(allowed_origins=["http://app.example"], max_connections=2)
        async with running_gateway(config, memory, **settings) as gateway:
            url = f"ws://127.0.0.1:{gateway.port}/ws"
            with pytest.raises(Exception, match="403"):
                await connect(url, origin="http://evil.example")
            first = await connect(url, origin="http://app.example")
            second = await connect(url)  # no Origin: not a browser
            with pytest.raises(Exception, match="503"):
                await connect(url)
            await first.close()
            await second.close()


async def test_a_connection_that_never_authenticates_is_closed_with_1008(config, embedder, llm):
    from runtime.engine import AsyncMemory

    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        async with running_gateway(config, memory, auth_timeout_s=0.2) as gateway:
            url = f"ws://127.0.0.1:{gateway.port}/ws"
            idle, _ = await raw_client(url)
            with anyio.fail_after(60):  # a safety net: the close is what the test waits for
                await idle.wait_closed()
            assert idle.close_code == 1008 and "no auth frame" in idle.close_reason


async def test_http_routes_viewer_metrics_health_protocol(live: LiveGateway):
    async with MemoryClient(live.url, token()) as client:
        await client.search("warm up", user_id="zed")

    def fetch(path: str) -> tuple[str, str]:
        with urllib.request.urlopen(live.http + path, timeout=10) as response:
            return response.headers["Content-Type"], response.read().decode()

    content_type, body = await anyio.to_thread.run_sync(fetch, "/")
    assert content_type.startswith("text/html") and "memstream" in body
    content_type, body = await anyio.to_thread.run_sync(fetch, "/metrics")
    assert content_type.startswith("text/plain")
    assert 'memstream_gateway_requests_total{outcome="ok",type="search"}' in body
    assert "memstream_gateway_request_seconds_bucket" in body and "memstream_gateway_connections" in body
    _, body = await anyio.to_thread.run_sync(fetch, "/healthz")
    assert json.loads(body)["status"] == "ok"
    _, body = await anyio.to_thread.run_sync(fetch, "/protocol.json")
    assert json.loads(body)["version"]
    with pytest.raises(urllib.error.HTTPError, match="404") as refused:
        await anyio.to_thread.run_sync(fetch, "/nope")
    refused.value.close()


def test_sync_client(threaded_gateway: LiveGateway):
    from gateway.client import SyncMemoryClient

    with SyncMemoryClient(threaded_gateway.url, token(["user:kim"])) as client:
        client.add("Kim drinks oolong tea", user_id="kim", infer=False)
        assert client.search("tea", user_id="kim")["results"][0]["memory"] == "Kim drinks oolong tea"
        events = client.subscribe(user_id="kim")
        first = next(events)
        events.close()
        assert first.seq == 1 and first.memory == "Kim drinks oolong tea"
        with pytest.raises(Forbidden):
            client.get_all(user_id="lee")


def test_protocol_document_in_the_repo_is_current():
    from pathlib import Path

    from gateway.protocol import protocol_schema

    document = Path(__file__).resolve().parents[2] / "gateway" / "protocol.schema.json"
    assert json.loads(document.read_text()) == protocol_schema(), \
        "regenerate with: memstream protocol-schema > gateway/protocol.schema.json"


async def test_tenant_wide_subscription_needs_admin_and_sees_every_owner(live: LiveGateway):
    ws, raw = await raw_client(live.url, auth=token(["*"], rights=["read", "write", "subscribe"]))
    async with ws:
        refused = await raw.call({"type": "subscribe", "id": "t", "tenant_wide": True})
        assert refused["type"] == "error" and refused["code"] == "forbidden"
    ws, raw = await raw_client(live.url, auth=token(["*"], rights=["admin"]))
    async with ws:
        answer = await raw.call({"type": "subscribe", "id": "t", "tenant_wide": True})
        assert answer["type"] == "result" and answer["data"]["owner"] is None
        await live.memory.add("from user one", user_id="one", infer=False)
        await live.memory.add("from agent two", agent_id="two", infer=False)
        await live.memory.add("another tenant", user_id="one", infer=False, tenant="elsewhere")
        first, second = await raw.until("event"), await raw.until("event")
        assert [(first["owner"], first["seq"]), (second["owner"], second["seq"])] == [("user:one", 1),
                                                                                      ("agent:two", 1)]
        assert (await raw.call({"type": "ping", "id": "p"}))["type"] == "pong"  # nothing from "elsewhere"
