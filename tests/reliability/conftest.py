"""Shared pieces of the reliability suite: an LLM double that answers by rule (the stand-in
server's rules, in-process), stores that can be switched off, a gateway over the in-process
engine, and the figures every test records.

Set ``MEMSTREAM_RELIABILITY_JSON=path`` to write the figures of a run to a JSON file
(``scripts/reliability_report.py`` does it for ``bench/results/reliability.json``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from runtime.config import Config
from runtime.engine import AsyncMemory
from runtime.errors import BackendUnavailable
from scripts.fake_llm_server import answer
from tests.gateway.conftest import gateway_config, start_gateway


class RuleLLM:
    """The stand-in LLM server's rules without HTTP: facts are the user's clauses, the decision
    adds what is new, relations come from "I <verb> ..." clauses. ``down`` makes every call fail
    like an unreachable endpoint; ``delay_s`` makes each call take that long."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.down = False
        self.calls = 0
        self.refused = 0

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        self.calls += 1
        if self.down:
            self.refused += 1
            raise BackendUnavailable("LLM endpoint unavailable (test: switched off)", backend="llm")
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        body = {"messages": messages, "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
        return answer(body)

    async def close(self) -> None:
        return None


class FlakyStore:
    """Wraps a real store (vector or graph). ``down = True``: every call fails like an unreachable
    server; ``failing = {"apply"}``: only those methods fail (a store that goes away between the
    reads before the commit and the write after it). Counts the calls it refused."""

    def __init__(self, inner: Any, backend: str):
        self.inner = inner
        self.backend = backend
        self.down = False
        self.failing: set[str] = set()
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name in ("open", "close"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down or name in self.failing:
                self.refused += 1
                raise BackendUnavailable(f"{self.backend} is unreachable (test: switched off)", backend=self.backend)
            return await attr(*args, **kwargs)

        return call


class Figures(dict):
    """What the reliability tests measured, by area; printed at the end of the session and written
    to ``MEMSTREAM_RELIABILITY_JSON`` when set."""

    def record(self, area: str, **values: Any) -> None:
        self.setdefault(area, {}).update(values)
        print(f"\nreliability[{area}]: {json.dumps(values, sort_keys=True)}")


@pytest.fixture(scope="session")
def figures() -> Any:
    found = Figures()
    yield found
    target = os.environ.get("MEMSTREAM_RELIABILITY_JSON")
    if not target or not found:
        return
    path = Path(target)
    document: dict[str, Any] = {}
    if path.is_file():  # merge: a separate run (e.g. the nightly fuzz) adds its own areas
        try:
            document = json.loads(path.read_text())
        except ValueError:
            document = {}
    document.setdefault("areas", {}).update(found)
    document["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    document["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


class EngineGateway:
    """A live gateway over the in-process engine, with handles on its parts."""

    def __init__(self, gateway: Any, memory: AsyncMemory, llm: Any):
        self.gateway = gateway
        self.memory = memory
        self.llm = llm
        self.url = f"ws://127.0.0.1:{gateway.port}/ws"


async def open_gateway(config: Config, memory: AsyncMemory, llm: Any, stop: anyio.Event,
                       **settings: Any) -> tuple[EngineGateway, Any]:
    gateway, task = await start_gateway(gateway_config(config, **settings), memory, stop)
    return EngineGateway(gateway, memory, llm), task


@pytest.fixture
async def rule_gateway(config: Config, embedder) -> AsyncIterator[EngineGateway]:
    """The gateway over the engine (real SQLite journal, Qdrant Edge, MiniLM) with the rule LLM."""
    llm = RuleLLM()
    config = msgspec.structs.replace(config, memory=msgspec.structs.replace(config.memory, mailbox_capacity=64))
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        stop = anyio.Event()
        live, task = await open_gateway(config, memory, llm, stop, heartbeat_s=30.0)
        try:
            yield live
        finally:
            stop.set()
            await task
