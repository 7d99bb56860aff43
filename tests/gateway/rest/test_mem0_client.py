"""mem0ai's own clients (the version the benchmark pins, in its own environment) against
``memstream serve`` on the embedded stores: add → search → update → history → delete, get_all,
users, reset and the webhook calls, unchanged apart from ``host=``; the webhook they register
receives every change, signed, in each owner's order.

The mem0ai environment is the benchmark's (``scripts/compare/mem0.py``): created once under
``.cache/bench/mem0-venv`` from ``scripts/mem0_requirements.txt`` (~2 min here, then reused).
The server's LLM is the stand-in (``scripts/fake_llm_server.py``): facts are the user's clauses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from gateway.client import MemoryClient
from scripts.compare.mem0 import ensure_mem0_venv
from scripts.fake_llm_server import make_app
from tests.doubles import http_server
from tests.gateway.served import Served
from tests.gateway.webhooks.receiver import Receiver

SESSION = Path(__file__).with_name("mem0_session.py")


@pytest.fixture(scope="session")
async def mem0_python() -> Path:
    return await anyio.to_thread.run_sync(ensure_mem0_venv)


async def test_mem0_clients_run_unchanged_against_memstream_serve(tmp_path: Path, mem0_python: Path):
    receiver = Receiver()
    async with http_server(make_app(0.0)) as llm_url, http_server(receiver.app()) as receiver_url:
        served = Served(tmp_path / "data", {"MEMSTREAM_LLM__PROVIDER": "openai",
                                            "MEMSTREAM_LLM__BASE_URL": llm_url})
        try:
            await anyio.to_thread.run_sync(served.wait_ready)
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
            env.update(MEM0_TELEMETRY="False", MEM0_DIR=str(tmp_path / "mem0-home"))
            done = await anyio.run_process([str(mem0_python), "-I", str(SESSION), served.url, served.token,
                                            receiver_url.removesuffix("/v1") + "/hook"], env=env, check=False)
            assert done.returncode == 0, done.stderr.decode()[-4000:]
            result = json.loads(done.stdout)
            check_sync_session(result["sync"])
            check_async_session(result["async"])
            receiver.secret = result["sync"]["webhook"]["secret"]
            async with MemoryClient(served.url.replace("http", "ws") + "/ws", served.token) as ws:
                heads = {owner: await ws.head(user_id=owner.split(":")[1]) for owner in ("user:alice", "user:bob")}
            with anyio.fail_after(120):  # a safety net: the wait is on the receiver's count
                await receiver.until_complete(heads)
            receiver.check_order_and_signatures()
            kinds = [d["event_details"]["event"] for d in receiver.by_owner("user:alice")]
            assert kinds.count("ADD") >= 1 and "UPDATE" in kinds and kinds[-1] == "DELETE"
        finally:
            served.stop()


def check_sync_session(out: dict) -> None:
    assert out["project_id"] == "default"
    assert out["webhook"]["webhook_id"].startswith("wh_") and out["webhook"]["secret"]
    assert out["add"]["status"] in ("PENDING", "RUNNING", "SUCCEEDED") and out["add"]["event_id"]
    texts = [m["memory"] for m in out["search"]["results"]]
    assert "I live in Berlin" in texts, texts
    assert out["update"]["text"] == "I live in Paris" and out["get"]["memory"] == "I live in Paris"
    assert out["get"]["metadata"] == {"source": "mem0-client"} and out["get"]["user_id"] == "alice"
    assert [(h["event"], h["new_memory"]) for h in out["history"]] == [
        ("ADD", "I live in Berlin"), ("UPDATE", "I live in Paris")]
    assert out["get_all"]["count"] == len(out["get_all"]["results"]) >= 2
    assert {"type": "user", "name": "alice"}.items() <= out["users"]["results"][0].items()
    assert [w["name"] for w in out["webhooks"]] == ["test hook"] and out["update_webhook"]["name"] == "renamed hook"
    assert out["delete"]["message"] and "I live in Paris" not in [m["memory"] for m in out["after_delete"]["results"]]
    assert out["delete_all"]["message"]


def check_async_session(out: dict) -> None:
    assert out["add"]["event_id"]
    assert "I play the cello" in [m["memory"] for m in out["search"]["results"]]
    assert out["update"]["memory"] == "I play the viola"
    assert [h["event"] for h in out["history"]] == ["ADD", "UPDATE"]
    assert "I play the viola" not in [m["memory"] for m in out["get_all"]["results"]]
    assert out["reset"]["message"] and out["users_after_reset"]["results"] == []

