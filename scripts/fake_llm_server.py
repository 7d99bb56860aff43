"""A stand-in OpenAI-compatible chat server FOR BENCHMARKS AND TESTS ONLY - not a language model.

It answers memstream's two structured calls by rule, after a fixed delay, so that add
throughput can be measured against a known LLM latency (the LLM-bound ceiling is
users ÷ (calls per turn × latency)):

- a ``facts`` schema: the user's clauses, split on punctuation and "and";
- a ``decisions`` schema: NONE for a fact that equals an existing memory, else ADD;
- a ``relations`` schema (graph memory): "I <verb> [prep] <thing>" clauses as triples;
- mem0ai's single-call "additive extraction" (``json_object``, no schema, a ``## New Messages``
  section): the same clauses as for ``facts``, as ``{"memory": [{"text": ...}]}`` - so memstream
  and mem0ai get the same facts at the same latency (``/stats`` counts calls per system).

    python -m scripts.fake_llm_server --port 8099 --latency-ms 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from aiohttp import web

_CLAUSES = re.compile(r"[.;!?\n]+|,\s+|\s+and\s+")


def extract_facts(conversation: str, max_items: int, max_chars: int) -> list[str]:
    lines = [line.split(":", 1)[1] for line in conversation.splitlines() if line.startswith("user:")]
    facts: list[str] = []
    for clause in _CLAUSES.split(" ".join(lines)):
        clause = clause.strip()
        if len(clause.split()) >= 2 and clause not in facts:
            facts.append(clause[:max_chars])
    return facts[:max_items]


def decide(prompt: str) -> list[dict[str, Any]]:
    existing_json = prompt.split("Existing memories:\n", 1)[1].split("\nNew facts:\n", 1)[0]
    facts_json = prompt.split("\nNew facts:\n", 1)[1]
    existing = {item["text"]: item["id"] for item in json.loads(existing_json)}
    return [
        {"fact": f, "event": "NONE", "id": existing[f]} if f in existing else {"fact": f, "event": "ADD", "id": "new"}
        for f in json.loads(facts_json)
    ]


def answer(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {}
    prompt = body["messages"][-1]["content"]
    properties = schema.get("properties", {})
    if "facts" in properties:
        spec = properties["facts"]
        conversation = prompt.split("\n", 1)[1] if prompt.startswith("Today is") else prompt
        return json.dumps({"facts": extract_facts(conversation, spec.get("maxItems", 8),
                                                  spec.get("items", {}).get("maxLength", 200))})
    if "decisions" in properties:
        return json.dumps({"decisions": decide(prompt)})
    if "relations" in properties:
        spec = properties["relations"]
        conversation = prompt.split("\n", 1)[1] if prompt.startswith("Today is") else prompt
        return json.dumps({"relations": extract_relations(conversation, spec.get("maxItems", 8))})
    if MEM0_SECTION in prompt:
        return json.dumps({"memory": [{"text": fact} for fact in mem0_facts(prompt)]})
    return "{}"


MEM0_SECTION = "## New Messages\n"
# memstream's defaults (memory.max_facts, memory.max_fact_chars): both systems get the same facts
MEM0_MAX_FACTS, MEM0_MAX_FACT_CHARS = 4, 80


def mem0_facts(prompt: str) -> list[str]:
    """The facts for mem0ai's extraction prompt: the ``user:`` lines of its New Messages section."""
    section = prompt.split(MEM0_SECTION, 1)[1].split("\n## ", 1)[0]
    return extract_facts(section, MEM0_MAX_FACTS, MEM0_MAX_FACT_CHARS)


def system_of(body: dict[str, Any]) -> str:
    """Which benchmarked system sent the request: ``mem0`` or ``memstream``."""
    messages = body.get("messages") or [{}]
    return "mem0" if MEM0_SECTION in str(messages[-1].get("content", "")) else "memstream"


_FIRST_PERSON = re.compile(r"^(?:I|i)\s+(\w+)(?:\s+(in|at|to|for|with|from))?\s+(?:(?:a|an|the|my)\s+)?(.+)$")


def extract_relations(conversation: str, max_items: int) -> list[dict[str, Any]]:
    """``I <verb> [in|at|...] <rest>`` clauses become (I, verb_prep, rest) triples."""
    lines = [line.split(":", 1)[1] for line in conversation.splitlines() if line.startswith("user:")]
    triples: list[dict[str, Any]] = []
    for clause in _CLAUSES.split(" ".join(lines)):
        match = _FIRST_PERSON.match(clause.strip())
        if match:
            verb, prep, rest = match.groups()
            relationship = f"{verb}_{prep}" if prep else verb
            triples.append({"source": "I", "relationship": relationship.lower(), "destination": rest[:60]})
    return triples[:max_items]


class FakeLLM:
    def __init__(self, latency_s: float):
        self.latency_s = latency_s
        self.calls = 0
        self.calls_by_system: dict[str, int] = {}

    async def chat(self, request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read())  # the stand-in's own CPU competes with what it measures
        self.calls += 1
        system = system_of(body)
        self.calls_by_system[system] = self.calls_by_system.get(system, 0) + 1
        await asyncio.sleep(self.latency_s)
        content = answer(body)
        return web.Response(body=msgspec.json.encode({
            "id": f"chatcmpl-{self.calls}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }), content_type="application/json")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": self.calls, "by_system": self.calls_by_system})


@asynccontextmanager
async def stand_in_llm(latency_s: float) -> AsyncIterator[str]:
    """The stand-in on a free local port for the block's duration; yields its ``/v1`` base URL."""
    runner = web.AppRunner(make_app(latency_s))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


def make_app(latency_s: float) -> web.Application:
    fake = FakeLLM(latency_s)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_get("/stats", fake.stats)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="benchmark-only OpenAI-compatible stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    web.run_app(make_app(args.latency_ms / 1000), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
