"""Hostile input: none of it crashes the server, produces an internal error, or leaks data.

- a hypothesis fuzz of the wire protocol from two sessions of different tenants and rights,
  aimed at the owner and memory ids of a victim, with the victim's text as a canary that must
  never appear in any frame the fuzzing sessions receive (``MEMSTREAM_FUZZ_FRAMES``: a few
  thousand in CI, 100000 nightly; tests/gateway/test_fuzz.py adds its own);
- oversized frames (1009), deep nesting, invalid UTF-8 (1007 in text frames, an error in
  MessagePack), lone surrogates, huge and odd metadata;
- filters that try to leave the caller's tenant and scope, and scopes that name another owner's
  memories through a shared agent or run id;
- Cypher syntax in facts and entity names, stored as data;
- path tricks in the configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from runtime.errors import ConfigError
from tests.gateway.conftest import gateway_config, raw_client, serving_on, token
from tests.gateway.fuzzing import FuzzSession
from tests.reliability.conftest import EngineGateway, RuleLLM, open_gateway

FRAMES = int(os.environ.get("MEMSTREAM_FUZZ_FRAMES", "2000"))
CANARY = "VICTIMCANARY"  # in every memory of the victims; must never reach the fuzzing sessions


# ---- fuzzing ------------------------------------------------------------------------------
class Seeded:
    def __init__(self, live: EngineGateway, victim_ids: list[str]):
        self.live = live
        self.victim_ids = victim_ids


@pytest.fixture
def seeded_gateway(tmp_path: Path, embedder) -> Iterator[Seeded]:
    """A gateway on a thread of its own (hypothesis is blocking), with victims' memories seeded in
    the fuzzing tenant (another user, and an agent id the fuzzer also uses) and in another tenant."""
    config = gateway_config(load_config("test", overrides={"data_dir": str(tmp_path / "data")}, environ={}),
                            rate_per_s=100000.0, rate_burst=100000, heartbeat_s=30.0)
    llm = RuleLLM()
    with start_blocking_portal() as portal:
        memory = portal.call(lambda: AsyncMemory(config, llm=llm, embedder=embedder).open())
        victim_ids: list[str] = []
        for kwargs in ({"user_id": "victim"}, {"user_id": "victim", "agent_id": "fuzzbot"},
                       {"user_id": "fuzz", "tenant": "elsewhere"}, {"user_id": "victim", "run_id": "fuzzrun"}):
            added = portal.call(lambda kw=kwargs: memory.add(f"{CANARY} secret of {kw}", infer=False,
                                                             metadata={"k": "v", "n": 1}, **kw))
            victim_ids.append(added["results"][0]["id"])
        try:
            with serving_on(portal, config, memory) as gateway:
                yield Seeded(EngineGateway(gateway, memory, llm), victim_ids)
            heads = [portal.call(lambda: memory.head(user_id="victim")),
                     portal.call(lambda: memory.head(user_id="fuzz", tenant="elsewhere"))]
            texts = portal.call(lambda: memory.get_all(user_id="victim"))["results"]
        finally:
            portal.call(memory.close)
    assert heads == [3, 1]  # the fuzz changed nothing of the victims
    assert len(texts) == 3 and all(CANARY in m["memory"] for m in texts)


TYPES = ["auth", "add", "search", "get", "get_all", "update", "delete", "delete_all", "history", "head",
         "subscribe", "unsubscribe", "ping", "reset", "teleport", "", "AUTH"]
IDS = st.sampled_from(["fuzz", "victim", "fuzzbot", "fuzzrun", "*", "", "x" * 300, "victim\u0000", "Fuzz"]) | \
    st.text(max_size=12)
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=30) | st.sampled_from(["victim", "fuzz", "user_id", "tenant", "*", "$where"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=16)
FILTER_KEYS = ["AND", "OR", "NOT", "user_id", "agent_id", "run_id", "tenant", "owner", "memory", "text", "id",
               "metadata", "metadata.k", "k", "n", "$where", "__proto__", "k.k", "*"]
OPS = ["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "icontains", "exists", "bad"]
filters = st.recursive(
    st.dictionaries(st.sampled_from(FILTER_KEYS),
                    scalars | st.dictionaries(st.sampled_from(OPS), json_values, max_size=2), max_size=3),
    lambda inner: st.dictionaries(st.sampled_from(["AND", "OR", "NOT"]), st.lists(inner, max_size=3), max_size=2),
    max_leaves=8)


def fields_for(victim_ids: list[str]) -> dict[str, Any]:
    memory_ids = st.sampled_from(victim_ids) | st.uuids().map(str) | st.text(max_size=40)
    messages = (st.text(max_size=80)
                | st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]),
                                                  "content": st.text(max_size=80)}), max_size=3))
    return {"id": st.integers(0, 2**31) | st.text(max_size=10), "user_id": IDS, "agent_id": IDS, "run_id": IDS,
            "memory_id": memory_ids, "query": st.text(max_size=40), "messages": messages, "data": st.text(max_size=40),
            "filters": filters, "metadata": json_values, "limit": st.integers(-5, 2000), "offset": st.integers(-5, 50),
            "as_of": st.integers(-1, 10) | st.text(max_size=25), "infer": st.booleans(),
            "request_id": st.text(max_size=20), "after_seq": st.integers(-1, 10), "tenant_wide": st.booleans(),
            "subscription": st.text(max_size=5), "threshold": st.floats(allow_nan=False) | st.none(),
            "fallback": st.booleans(), "since_seq": st.integers(-1, 10), "tenant": st.sampled_from(["elsewhere"]),
            "token": st.just(token(tenant="elsewhere", rights=["read", "write", "subscribe", "admin"]))
            | st.text(max_size=20)}


def as_msgpack(frame: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "binary", msgspec.msgpack.encode(frame)
    except OverflowError:  # integers past 64 bits have no MessagePack form: send them as JSON
        return "text", json.dumps(frame, default=str)


def wire_strategy(victim_ids: list[str]) -> st.SearchStrategy[tuple[int, str, Any]]:
    fields = fields_for(victim_ids)
    frames = st.fixed_dictionaries({"type": st.sampled_from(TYPES)},
                                   optional=fields)  # every field may appear on every type
    payloads = st.one_of(
        frames.map(lambda f: ("text", json.dumps(f))),
        frames.map(as_msgpack),
        frames.map(lambda f: ("text", json.dumps(f).replace("fuzz", "fu\\ud800zz"))),  # lone surrogates
        frames.map(lambda f: as_msgpack({**f, "metadata": msgspec.msgpack.Ext(3, b"x")})),
        st.integers(1, 3000).map(lambda n: ("text", "[" * n + "]" * n)),
        st.integers(1, 3000).map(lambda n: ("binary", b"\x91" * n + b"\xc0")),  # nested MessagePack arrays
        st.text(max_size=200).map(lambda t: ("text", t)),
        st.binary(max_size=200).map(lambda b: ("binary", b)),
        st.binary(max_size=50).map(lambda b: ("bad-utf8", b"\xff" + b)),
    )
    return st.tuples(st.integers(0, 1), payloads)


def test_fuzzed_frames_never_crash_never_fail_internally_and_never_leak(seeded_gateway: Seeded, figures):
    url = seeded_gateway.live.url
    sessions = [FuzzSession(url, token(["user:fuzz", "agent:fuzzbot", "run:fuzzrun"]), CANARY),  # victim's tenant
                FuzzSession(url, token(tenant="other", rights=["read", "write", "subscribe", "admin"]), CANARY)]
    for session in sessions:
        session.open()
    sent = {"frames": 0, "closes": 0}

    @settings(max_examples=FRAMES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large])
    @given(wire_strategy(seeded_gateway.victim_ids))
    def one_frame(item: tuple[int, tuple[str, Any]]) -> None:
        which, (kind, payload) = item
        session = sessions[which]
        sent["frames"] += 1
        try:
            session.ws.send(payload, text=(kind != "binary"))
            session.check_alive()
        except ConnectionClosed:
            assert session.ws.close_code == 1007 and kind == "bad-utf8", (session.ws.close_code, kind)
            sent["closes"] += 1
            session.open()

    one_frame()
    for session in sessions:
        session.check_alive()
        session.close()
    assert sent["frames"] >= FRAMES * 0.9
    area = "fuzz_nightly" if FRAMES >= 100_000 else "fuzz"
    figures.record(area, frames=sent["frames"], frames_setting=FRAMES,
                   server_frames_checked=sum(s.frames_read for s in sessions), legitimate_closes_1007=sent["closes"],
                   internal_errors=0, leaks=0, crashes=0)


# ---- targeted hostile frames ----------------------------------------------------------------
async def test_oversized_nested_invalid_utf8_and_surrogates(config: Config, embedder, figures):
    llm = RuleLLM()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop, max_frame_bytes=64 * 1024)
        try:
            for data, text in (("x" * 70_000, True), (b"\x90" * 70_000, False)):  # over the limit: 1009
                ws, raw = await raw_client(live.url, auth=token())
                await ws.send(data, text=text)
                with pytest.raises(ConnectionClosed):
                    await raw.recv()
                assert ws.close_code == 1009
            ws, raw = await raw_client(live.url, auth=token())
            await ws.send(b'{"type": "ping", "id": "\xff\xfe"}', text=True)  # invalid UTF-8 in a text frame
            with pytest.raises(ConnectionClosed):
                await raw.recv()
            assert ws.close_code == 1007
            ws, raw = await raw_client(live.url, auth=token())
            cases = [
                ("[" * 30_000 + "]" * 30_000, True, ("invalid_frame", "bad_frame")),
                (b"\x91" * 30_000 + b"\xc0", False, ("bad_frame", "invalid_frame")),  # nested MessagePack
                (msgspec.msgpack.encode({"type": "ping", "id": "x"})[:-1] + b"\xa2\xff\xfe", False,
                 ("bad_frame", "invalid_frame")),  # invalid UTF-8 inside a MessagePack string
                ('{"type": "add", "id": 1, "user_id": "a\\ud800", "messages": "hi", "infer": false}', True,
                 ("bad_frame", "invalid_frame", "result")),
                ('{"type": "add", "id": 2, "user_id": "a", "messages": "x\\udfff", "infer": false}', True,
                 ("bad_frame", "invalid_frame", "result")),
                ('{"type": "search", "id": 3, "user_id": "a", "query": "\\ud83d"}', True,
                 ("bad_frame", "invalid_frame", "result")),
            ]
            for data, text, codes in cases:
                await ws.send(data, text=text)
                while True:
                    answer = await raw.recv()
                    if answer["type"] != "accepted":
                        break
                assert answer.get("code", answer["type"]) in codes, (str(data)[:40], answer)
                assert (await raw.call({"type": "ping", "id": "alive"}))["type"] == "pong"
            await ws.close()
        finally:
            stop.set()
            await task
    figures.record("hostile_frames", cases=len(cases) + 3, closes={"1009": 2, "1007": 1}, crashes=0)


async def test_huge_and_odd_metadata_is_refused_or_stored_as_data(rule_gateway: EngineGateway):
    ws, raw = await raw_client(rule_gateway.url, auth=token(["user:meta"]))
    refused = [
        {"big": "x" * 20_000},  # over the engine's metadata limit (16 KiB)
        {f"k{i}": i for i in range(3000)},
    ]
    for n, metadata in enumerate(refused):
        answer = await raw.call({"type": "add", "id": n, "user_id": "meta", "messages": "m", "infer": False,
                                 "metadata": metadata})
        assert answer["type"] == "error" and answer["code"] in ("invalid_request", "invalid_frame"), answer
    for n, depth in enumerate((200, 2000, 20_000)):  # nested metadata, as text (json.dumps would recurse)
        nested = "[" * depth + "]" * depth
        await ws.send(f'{{"type": "add", "id": "deep{n}", "user_id": "meta", "messages": "m", "infer": false, '
                      f'"metadata": {{"d": {nested}}}}}')
        while True:
            answer = await raw.recv()
            if answer["type"] in ("result", "error") and answer.get("id") in (f"deep{n}", None):
                break
        assert answer["type"] == "result" or answer["code"] in ("invalid_request", "invalid_frame", "bad_frame")
        assert (await raw.call({"type": "ping", "id": f"alive{n}"}))["type"] == "pong"
    stored = [{"n": 10**30}, {"n": -(2**63)}, {"f": 1e308}, {"": "empty key"}, {"user_id": "victim", "tenant": "x"},
              {"nested": {"a": [1, {"b": None}]}}, {"s": "\u0000\u202e"}]
    for n, metadata in enumerate(stored):
        answer = await raw.call({"type": "add", "id": 100 + n, "user_id": "meta", "messages": f"odd {n}",
                                 "infer": False, "metadata": metadata})
        assert answer["type"] in ("result", "error"), answer
        if answer["type"] == "error":
            assert answer["code"] == "invalid_request", answer
    # MessagePack-only values (binary, extension types) are not JSON metadata
    ws2, raw2 = await raw_client(rule_gateway.url, auth=token(["user:meta"]), subprotocols=["memstream.msgpack"])
    for n, value in enumerate((b"\x00bytes", msgspec.msgpack.Ext(1, b"ext"))):
        await ws2.send(msgspec.msgpack.encode({"type": "add", "id": n, "user_id": "meta", "messages": "bin",
                                               "infer": False, "metadata": {"v": value}}))
        answer = await raw2.until("error", n)
        assert answer["code"] in ("invalid_request", "invalid_frame"), answer
    listing = await raw.call({"type": "get_all", "id": "all", "user_id": "meta"})
    assert listing["type"] == "result", listing
    for memory in listing["data"]["results"]:  # what was stored reads back, scope from the frame, not metadata
        assert memory["user_id"] == "meta"
    await ws.close()
    await ws2.close()


# ---- scope escapes ----------------------------------------------------------------------------
ESCAPES = [
    {"user_id": "victim"}, {"OR": [{"user_id": "victim"}, {"user_id": "mallory"}]}, {"tenant": "default"},
    {"NOT": [{"user_id": "mallory"}]}, {"owner": "user:victim"}, {"user_id": {"ne": "mallory"}},
    {"agent_id": "shared-bot"}, {"run_id": "*"}, {"OR": [{"k": "v"}, {"NOT": [{"k": "v"}]}]},
    {"k": {"ne": "nothing"}}, {"memory": {"contains": CANARY}}, {"metadata.user_id": "victim"},
    {"$or": [{"user_id": "victim"}]}, {"AND": [{"k": "*"}]}, {"id": {"exists": True}},
]


async def test_filters_and_shared_ids_never_reach_another_owner_or_tenant(rule_gateway: EngineGateway, figures):
    memory = rule_gateway.memory
    secrets = [
        await memory.add(f"{CANARY} of the victim", user_id="victim", infer=False, metadata={"k": "v"}),
        await memory.add(f"{CANARY} victim via a shared agent", user_id="victim", agent_id="shared-bot",
                         infer=False, metadata={"k": "v"}),
        await memory.add(f"{CANARY} victim via a shared run", user_id="victim", run_id="shared-run", infer=False),
        await memory.add(f"{CANARY} same user id, other tenant", user_id="mallory", infer=False, tenant="other",
                         metadata={"k": "v"}),
    ]
    await memory.add("mallory's own note", user_id="mallory", infer=False, metadata={"k": "v"})
    await memory.add("the bot's own note", agent_id="shared-bot", infer=False, metadata={"k": "v"})
    await memory.add("the run's own note", run_id="shared-run", infer=False)
    owners = ["user:mallory", "agent:shared-bot", "run:shared-run"]
    ws, raw = await raw_client(rule_gateway.url, auth=token(owners, rights=["read", "write", "subscribe"]))
    scopes = [{"user_id": "mallory"}, {"agent_id": "shared-bot"}, {"run_id": "shared-run"},
              {"user_id": "mallory", "agent_id": "shared-bot", "run_id": "shared-run"}]
    checked = 0
    for scope in scopes:
        for flt in [None, *ESCAPES]:
            for frame in ({"type": "search", "query": "victim secret", "fallback": True, "limit": 50},
                          {"type": "get_all", "limit": 1000}, {"type": "get_all", "as_of": 100}):
                request = {**frame, **scope, "id": f"{checked}", **({"filters": flt} if flt is not None else {})}
                answer = await raw.call(request)
                checked += 1
                assert CANARY not in json.dumps(answer), (request, answer)
                if answer["type"] == "error":
                    assert answer["code"] in ("invalid_request", "forbidden"), (request, answer)
    # the owner-scoped writes cannot reach the victim's memories either
    assert (await raw.call({"type": "delete_all", "id": "d1", "agent_id": "shared-bot"}))["type"] == "result"
    assert (await raw.call({"type": "delete_all", "id": "d2", "run_id": "shared-run"}))["type"] == "result"
    for added in secrets[:3]:
        assert CANARY in (await memory.get(added["results"][0]["id"]))["memory"]
    assert await memory.head(user_id="victim") == 3
    # the victim's journal and index still agree (nothing was deleted behind the journal's back)
    replayed = await memory.get_all(user_id="victim", as_of=3)
    assert {m["id"] for m in replayed["results"]} == {m["id"] for m in (await memory.get_all(user_id="victim"))[
        "results"]}
    await ws.close()
    figures.record("scope_escapes", requests=checked, filters=len(ESCAPES), leaks=0)


# ---- Cypher injection ---------------------------------------------------------------------------
INJECTIONS = [
    "x'}) MATCH (n) DETACH DELETE n //",
    'y"}) WITH 1 AS one MATCH (m:Entity) SET m:Stolen //',
    "z` RETURN 1 UNION MATCH (n) RETURN n //",
    "$tenant} ) CALL dbms_components() YIELD name RETURN name //",
    "w') DETACH DELETE (n) --",
]


async def test_cypher_in_facts_and_entity_names_is_stored_as_data(tmp_path: Path, embedder, figures):
    config = load_config("test", overrides={"data_dir": str(tmp_path / "data"), "graph": {"enabled": True}},
                         environ={})
    llm = RuleLLM()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        await memory.add("I live in Oslo", user_id="bystander")
        before = await memory.get_all(user_id="bystander")
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop)
        try:
            ws, raw = await raw_client(live.url, auth=token(["user:attacker"]))
            for n, payload in enumerate(INJECTIONS):
                answer = await raw.call({"type": "add", "id": n, "user_id": "attacker",
                                         "messages": [{"role": "user", "content": f"I like {payload}"}]})
                assert answer["type"] == "result", answer
                assert [r["destination"] for r in answer["data"]["relations"]] == [payload]
            mine = (await raw.call({"type": "get_all", "id": "all", "user_id": "attacker"}))["data"]
            assert {r["destination"] for r in mine["relations"]} == set(INJECTIONS)  # data, verbatim
            assert {m["memory"] for m in mine["results"]} >= {f"I like {x}" for x in INJECTIONS}
            found = await raw.call({"type": "search", "id": "s", "user_id": "attacker", "query": INJECTIONS[0]})
            assert found["type"] == "result"
            await ws.close()
        finally:
            stop.set()
            await task
        after = await memory.get_all(user_id="bystander")
        assert after == before and [r["destination"] for r in after["relations"]] == ["Oslo"]
        assert await memory.graph.count(config.tenant, "user:bystander") == (2, 1)
    figures.record("cypher_injection", payloads=len(INJECTIONS), stored_verbatim=len(INJECTIONS), damage=0)


# ---- configuration path tricks ---------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    {"journal": {"path": "../../etc/journal.sqlite3"}},
    {"journal": {"path": "/etc/memstream.sqlite3"}},
    {"vector_store": {"path": "../outside"}},
    {"vector_store": {"path": "/tmp/vectors"}},
    {"graph_store": {"path": "a/../../b"}},
    {"graph_store": {"path": ""}},
    {"journal": {"path": "x\u0000y"}},
    {"data_dir": "/etc/passwd"},  # a file, not a folder
    {"data_dir": ""},
])
def test_store_paths_cannot_leave_the_data_dir(tmp_path: Path, overrides: dict[str, Any]):
    layered = {"data_dir": str(tmp_path / "data"), **overrides}
    with pytest.raises(ConfigError, match="data_dir|path"):
        load_config("test", overrides=layered, environ={})


def test_an_absolute_or_relative_data_dir_is_the_operators_choice_and_contains_the_stores(tmp_path: Path):
    config = load_config("test", overrides={"data_dir": str(tmp_path / "a" / ".." / "data")}, environ={})
    assert config.data_path("journal.sqlite3") == tmp_path / "a" / ".." / "data" / "journal.sqlite3"
    with pytest.raises(ConfigError):
        config.data_path("../../etc/passwd")


@pytest.mark.parametrize("source", ["/dev/zero", "/etc", "/etc/passwd", "../../etc/shadow", "no-such-preset",
                                    "/proc/self/mem", "local/../../../etc/hostname"])
def test_odd_config_files_fail_with_config_error(source: str):
    with pytest.raises(ConfigError):  # devices and folders are refused before anything is read
        load_config(source, environ={})
    with pytest.raises(ConfigError):
        load_config(environ={"MEMSTREAM_CONFIG": source})


def test_binary_deep_and_huge_config_files(tmp_path: Path):
    cases = {"binary.yaml": b"\xff\xfe\x00garbage", "deep.yaml": b"a: " + b"[" * 100_000,
             "huge.yaml": b"data_dir: x\n" + b"#" * (2 << 20), "list.yaml": b"- 1\n- 2\n"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ConfigError):
            load_config(tmp_path / name, environ={})
