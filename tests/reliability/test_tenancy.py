"""Tenancy and auth: forged, expired, wrong-tenant, wrong-owner and read-only tokens against every
operation of the protocol, subscriptions and history included, one test per (token, operation).

Denied means: forged and expired tokens get ``unauthenticated``; a token of another owner, or
one without the right, gets ``forbidden``; a token of another tenant reaches only its own tenant
(the victim's records do not exist there: ``not_found``, empty answers, no events). In every
case nothing of the victim is changed and no frame carries the victim's text.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from runtime.config import load_config
from runtime.engine import AsyncMemory
from tests.gateway.conftest import raw_client, token
from tests.reliability.conftest import EngineGateway, RuleLLM, open_gateway

CANARY = "TENANCYCANARY"
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256"
ALL = ["read", "write", "subscribe", "admin"]
TOKENS = {
    "forged": lambda: token(["user:victim"], rights=ALL, secret=OTHER_SECRET),
    "expired": lambda: token(["user:victim"], rights=ALL, ttl_s=60, now=time.time() - 3600),
    "wrong_tenant": lambda: token(["*"], rights=ALL, tenant="intruder"),
    "wrong_owner": lambda: token(["user:mallory", "agent:victim", "run:victim"], rights=["read", "write", "subscribe"]),
    "read_only": lambda: token(["user:victim"], rights=["read"]),
}
OPERATIONS = ["auth", "add", "search", "get", "get_all", "update", "delete", "delete_all", "history_by_id",
              "history_by_owner", "head", "reset", "subscribe", "subscribe_tenant_wide"]
READS = {"search", "get", "get_all", "history_by_id", "history_by_owner", "head"}


class Victim:
    def __init__(self, live: EngineGateway, memory_id: str, head: int):
        self.live = live
        self.memory_id = memory_id
        self.head = head


@pytest.fixture(scope="module")
async def victim(tmp_path_factory, embedder) -> AsyncIterator[Victim]:
    config = load_config("test", overrides={"data_dir": str(tmp_path_factory.mktemp("tenancy"))}, environ={})
    llm = RuleLLM()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        first = await memory.add(f"{CANARY} the victim's diary", user_id="victim", infer=False, metadata={"k": "v"})
        await memory.add(f"{CANARY} the victim's address", user_id="victim", infer=False)
        await memory.add(f"{CANARY} with a shared agent id", user_id="victim", agent_id="victim", infer=False)
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop, heartbeat_s=30.0)
        try:
            yield Victim(live, first["results"][0]["id"], await memory.head(user_id="victim"))
        finally:
            stop.set()
            await task


def frame_for(operation: str, victim: Victim) -> dict[str, Any]:
    v = {"user_id": "victim"}
    return {
        "auth": {"type": "auth", "token": token(["user:victim"])},  # filled in per test
        "add": {"type": "add", "messages": "pwned", "infer": False, "request_id": "intruder-add", **v},
        "search": {"type": "search", "query": "diary", **v},
        "get": {"type": "get", "memory_id": victim.memory_id},
        "get_all": {"type": "get_all", **v},
        "update": {"type": "update", "memory_id": victim.memory_id, "data": "pwned"},
        "delete": {"type": "delete", "memory_id": victim.memory_id},
        "delete_all": {"type": "delete_all", **v},
        "history_by_id": {"type": "history", "memory_id": victim.memory_id},
        "history_by_owner": {"type": "history", **v},
        "head": {"type": "head", **v},
        "reset": {"type": "reset"},
        "subscribe": {"type": "subscribe", **v},
        "subscribe_tenant_wide": {"type": "subscribe", "tenant_wide": True},
    }[operation]


def expected(kind: str, operation: str) -> str:
    """What the answer must be: an error code, or ``isolated`` / ``allowed`` (a result that holds none
    of the victim's data, or the victim's own data for a reader)."""
    if kind in ("forged", "expired"):
        return "unauthenticated"
    if kind == "wrong_tenant":
        return "unauthenticated" if operation == "auth" else "isolated"
    if operation == "auth":
        return "narrow_grant"
    if kind == "read_only" and operation in READS:
        return "allowed"
    return "forbidden"


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", list(TOKENS))
async def test_every_operation_is_denied_to_the_wrong_token(victim: Victim, kind: str, operation: str):
    want = expected(kind, operation)
    bad = TOKENS[kind]()
    if kind == "wrong_tenant" and operation == "auth":  # a connection of the victim's tenant cannot switch
        ws, raw = await raw_client(victim.live.url, auth=token(["user:someone"]))
    else:
        ws, raw = await raw_client(victim.live.url)
    received: list[dict[str, Any]] = []
    try:
        auth = await raw.call({"type": "auth", "id": "auth", "token": bad})
        received.append(auth)
        if operation == "auth":
            if want == "narrow_grant":
                assert auth["type"] == "result", auth
                assert "admin" not in auth["data"]["rights"] and "*" not in auth["data"]["owners"]
                assert "user:victim" not in auth["data"]["owners"] or auth["data"]["rights"] == ["read"]
            else:
                assert auth["type"] == "error" and auth["code"] == want, auth
            return
        if kind in ("forged", "expired"):
            assert auth["type"] == "error" and auth["code"] == "unauthenticated", auth
        frame = {**frame_for(operation, victim), "id": "op"}
        answer = await raw.call(frame)
        received.append(answer)
        if want in ("unauthenticated", "forbidden"):
            assert answer["type"] == "error" and answer["code"] == want, answer
        elif want == "allowed":
            assert answer["type"] == "result", answer
        else:  # isolated: the other tenant's view, where the victim does not exist
            if operation in ("get", "update", "delete", "history_by_id"):
                assert answer["type"] == "error" and answer["code"] == "not_found", answer
            else:
                assert answer["type"] == "result", answer
                data = answer["data"]
                if operation in ("search", "get_all"):  # at most the intruder's own "pwned", in its tenant
                    assert all(r["memory"] == "pwned" for r in data["results"]), data
                elif operation == "history_by_owner":
                    assert all(row["tenant"] == "intruder" for row in data)
                elif operation == "delete_all":
                    assert data["deleted"] <= 1  # at most the intruder's own "pwned" in its own tenant
        if operation.startswith("subscribe") and answer["type"] == "result":
            # a change of the victim now must not reach this subscription
            await victim.live.memory.add(f"{CANARY} live change", user_id="victim", infer=False,
                                         request_id=f"live-{kind}-{operation}")
            victim.head += 1
            with anyio.move_on_after(0.5):
                while True:
                    received.append(await raw.recv())
            leaked = [f for f in received if f["type"] == "event" and f["event"].get("tenant") != "intruder"]
            assert not leaked and CANARY not in json.dumps(received), received
    finally:
        await ws.close()
    if want != "allowed":
        assert CANARY not in json.dumps(received), received
    await victim_unchanged_or_grown(victim)


async def victim_unchanged_or_grown(victim: Victim) -> None:
    """The victim's records are intact (the subscription cases add live changes of the victim's own)."""
    memory = victim.live.memory
    assert await memory.head(user_id="victim") == victim.head
    records = (await memory.get_all(user_id="victim"))["results"]
    assert len(records) == victim.head and all(CANARY in r["memory"] for r in records)


async def test_a_token_that_expires_on_an_open_connection_stops_working(victim: Victim, figures):
    gateway = victim.live.gateway
    ws, raw = await raw_client(victim.live.url, auth=token(["user:victim"], rights=ALL, ttl_s=3600))
    try:
        assert (await raw.call({"type": "head", "id": "before", "user_id": "victim"}))["type"] == "result"
        gateway.clock = lambda: time.time() + 3600  # the gateway's clock an hour on: the token has expired
        for operation in OPERATIONS[1:]:
            answer = await raw.call({**frame_for(operation, victim), "id": operation})
            assert answer["type"] == "error" and answer["code"] == "unauthenticated", (operation, answer)
            assert "expired" in answer["message"]
    finally:
        gateway.clock = time.time
        await ws.close()
    await victim_unchanged_or_grown(victim)
    cases = len(TOKENS) * len(OPERATIONS)
    figures.record("tenancy", token_kinds=len(TOKENS), operations=len(OPERATIONS), cases=cases + len(OPERATIONS) - 1,
                   leaks=0, unauthorized_changes=0)
