"""Store outages: the vector store, the graph store and the LLM endpoint go away for a while.

Requests fail with a typed, clear error over the wire (``error{code: "unavailable"}``, naming the
backend, with ``committed_seq`` when the change is already durable in the journal); the journal
stays gapless with each request id once; live subscribers still get every committed change; and
when the store is back, retrying with the same ``request_id`` answers the original result and the
projection has caught up with the journal.
"""

from __future__ import annotations

from collections import Counter

import anyio
import msgspec
from aiohttp import web

from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from runtime.graphs.ladybug import LadybugGraphStore
from runtime.vectors.edge import EdgeVectorStore
from scripts.fake_llm_server import make_app
from tests.gateway.conftest import raw_client, token
from tests.reliability.conftest import FlakyStore, RuleLLM, open_gateway


def journal_is_clean(history: list[dict], request_ids: list[str]) -> None:
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    causes = Counter(e["cause"] for e in history)
    assert all(causes[r] == 1 for r in request_ids), causes


async def test_vector_store_outage(config: Config, embedder, figures):
    store = FlakyStore(EdgeVectorStore(config.data_path("vectors")), "vector_store")
    llm = RuleLLM()
    async with AsyncMemory(config, llm=llm, embedder=embedder, vector_store=store) as memory:
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop)
        try:
            ws, raw = await raw_client(live.url, auth=token(["user:vera"]))
            watch_ws, watcher = await raw_client(live.url, auth=token(["user:vera"]))
            assert (await watcher.call({"type": "subscribe", "id": "s", "user_id": "vera"}))["type"] == "result"
            first = await raw.call({"type": "add", "id": 1, "messages": "I grow tomatoes", "user_id": "vera",
                                    "request_id": "v1"})
            assert first["type"] == "result"

            store.down = True
            # with inference the similar memories are read before the commit: nothing is committed
            refused = await raw.call({"type": "add", "id": 2, "messages": "I grow basil", "user_id": "vera",
                                      "request_id": "v2"})
            assert refused["type"] == "error" and refused["code"] == "unavailable", refused
            assert "vector_store" in refused["message"] and "committed_seq" not in refused
            # verbatim: committed to the journal, then the index write fails - the error says so
            durable = await raw.call({"type": "add", "id": 3, "messages": "I grow chillies", "user_id": "vera",
                                      "infer": False, "request_id": "v3"})
            assert durable["type"] == "error" and durable["code"] == "unavailable", durable
            assert durable["committed_seq"] == 2 and "committed to the journal" in durable["message"]
            for frame in ({"type": "search", "id": 4, "query": "plants", "user_id": "vera"},
                          {"type": "get_all", "id": 5, "user_id": "vera"}):
                answer = await raw.call(frame)
                assert answer["type"] == "error" and answer["code"] == "unavailable", answer
            # the journal still answers: head, history, and the live subscriber got the committed change
            assert (await raw.call({"type": "head", "id": 6, "user_id": "vera"}))["data"] == {"head": 2}
            assert [(await watcher.until("event"))["seq"] for _ in range(2)] == [1, 2]

            store.down = False
            again = await raw.call({"type": "add", "id": 7, "messages": "I grow chillies", "user_id": "vera",
                                    "infer": False, "request_id": "v3"})
            assert again["type"] == "result" and again["data"]["results"][0]["memory"] == "I grow chillies"
            memories = (await raw.call({"type": "get_all", "id": 8, "user_id": "vera"}))["data"]["results"]
            assert sorted(m["memory"] for m in memories) == ["I grow chillies", "I grow tomatoes"]  # caught up
            retried = await raw.call({"type": "add", "id": 9, "messages": "I grow basil", "user_id": "vera",
                                      "request_id": "v2"})
            assert retried["type"] == "result"
            journal_is_clean(await memory.history(user_id="vera"), ["v1", "v2", "v3"])
            replayed = await memory.get_all(user_id="vera", as_of=await memory.head(user_id="vera"))
            assert {m["id"] for m in replayed["results"]} == \
                {m["id"] for m in (await memory.get_all(user_id="vera"))["results"]}
            await ws.close()
            await watch_ws.close()
        finally:
            stop.set()
            await task
    figures.record("outage_vector_store", calls_refused=store.refused, outages=1, lost=0)


async def test_graph_store_outage(tmp_path, embedder, figures):
    config = load_config("test", overrides={"data_dir": str(tmp_path / "data"), "graph": {"enabled": True}},
                         environ={})
    store = FlakyStore(LadybugGraphStore(config.data_path("graph")), "graph_store")
    llm = RuleLLM()
    try:
        async with AsyncMemory(config, llm=llm, embedder=embedder, graph_store=store) as memory:
            stop = anyio.Event()
            live, task = await open_gateway(config, memory, llm, stop)
            try:
                ws, raw = await raw_client(live.url, auth=token(["user:gus"]))
                assert (await raw.call({"type": "add", "id": 1, "messages": "I live in Lyon", "user_id": "gus",
                                        "request_id": "g1"}))["type"] == "result"
                store.down = True  # unreachable: entity resolution before the commit fails, nothing committed
                refused = await raw.call({"type": "add", "id": 2, "messages": "I work at Acme", "user_id": "gus",
                                          "request_id": "g2"})
                assert refused["type"] == "error" and refused["code"] == "unavailable", refused
                assert "graph_store" in refused["message"]
                answer = await raw.call({"type": "search", "id": 3, "query": "city", "user_id": "gus"})
                assert answer["type"] == "error" and answer["code"] == "unavailable"
                head = await memory.head(user_id="gus")
                store.down, store.failing = False, {"apply"}  # reads work, the write after the commit fails
                durable = await raw.call({"type": "add", "id": 4, "messages": "I work at Acme", "user_id": "gus",
                                          "request_id": "g2"})
                assert durable["type"] == "error" and durable["code"] == "unavailable", durable
                assert durable["committed_seq"] > head and "graph store" in durable["message"]
                store.failing = set()
                again = await raw.call({"type": "add", "id": 5, "messages": "I work at Acme", "user_id": "gus",
                                        "request_id": "g2"})
                assert again["type"] == "result" and again["data"]["relations"], again
                now = await memory.get_all(user_id="gus")
                replayed = await memory.get_all(user_id="gus", as_of=await memory.head(user_id="gus"))
                assert {r["id"] for r in now["relations"]} == {r["id"] for r in replayed["relations"]}
                assert {r["destination"] for r in now["relations"]} == {"Lyon", "Acme"}  # caught up
                journal_is_clean(await memory.history(user_id="gus"), [])
                assert Counter(e["cause"] for e in await memory.history(user_id="gus"))["g2"] == \
                    len(again["data"]["results"]) + len(again["data"]["relations"])
                await ws.close()
            finally:
                stop.set()
                await task
    finally:
        await store.inner.close()
    figures.record("outage_graph_store", calls_refused=store.refused, outages=2, lost=0)


async def test_llm_endpoint_outage(config: Config, embedder, figures, unused_tcp_port_factory=None):
    async def serve(port: int) -> web.AppRunner:
        runner = web.AppRunner(make_app(0.0))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        return runner

    runner = await serve(0)
    port = runner.addresses[0][1]
    config = msgspec.convert({**msgspec.to_builtins(config), "llm": {
        "provider": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "timeout_s": 5.0}}, Config)
    refused_calls = 0
    async with AsyncMemory(config, embedder=embedder) as memory:
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, None, stop)
        try:
            ws, raw = await raw_client(live.url, auth=token(["user:lia"]))
            assert (await raw.call({"type": "add", "id": 1, "messages": "I speak Welsh", "user_id": "lia",
                                    "request_id": "l1"}))["type"] == "result"
            await runner.cleanup()  # the endpoint goes away: connections are refused
            with anyio.fail_after(60):  # it fails (refused at once, retries bounded by count), not hangs
                refused = await raw.call({"type": "add", "id": 2, "messages": "I speak Gaelic", "user_id": "lia",
                                          "request_id": "l2"})
            assert refused["type"] == "error" and refused["code"] == "unavailable", refused
            assert "LLM endpoint" in refused["message"] and "committed_seq" not in refused
            refused_calls += 1
            assert await memory.head(user_id="lia") == 1  # nothing committed
            # what needs no LLM keeps working
            verbatim = await raw.call({"type": "add", "id": 3, "messages": "Lia's note", "user_id": "lia",
                                       "infer": False, "request_id": "l3"})
            assert verbatim["type"] == "result"
            assert (await raw.call({"type": "search", "id": 4, "query": "language", "user_id": "lia"}))[
                "type"] == "result"
            runner = await serve(port)  # back, same address
            again = await raw.call({"type": "add", "id": 5, "messages": "I speak Gaelic", "user_id": "lia",
                                    "request_id": "l2"})
            assert again["type"] == "result" and again["data"]["results"], again
            journal_is_clean(await memory.history(user_id="lia"), ["l1", "l2", "l3"])
            await ws.close()
        finally:
            stop.set()
            await task
            await runner.cleanup()
    figures.record("outage_llm_endpoint", requests_refused=refused_calls, outages=1, lost=0)
