"""The OpenAI-compatible adapter against a real HTTP server (the benchmark stand-in)."""

from __future__ import annotations

import json

import pytest

from runtime.engine import AsyncMemory
from runtime.errors import BackendUnavailable
from runtime.llms.openai import OpenAICompatibleLLM
from runtime.prompts import facts_schema, render_extraction
from scripts.fake_llm_server import make_app
from tests.doubles import http_server


@pytest.fixture
async def server_url():
    async with http_server(make_app(0.0)) as url:
        yield url


async def test_structured_call_round_trip(server_url):
    import datetime as dt

    llm = OpenAICompatibleLLM(base_url=server_url, model="fake")
    raw = await llm.complete_json(render_extraction("user: I live in Oslo and I like skiing"),
                                  facts_schema(4, 80), name="facts")
    assert json.loads(raw) == {"facts": ["I live in Oslo", "I like skiing"]}
    await llm.close()


async def test_json_object_mode_for_llama_cpp_style_servers(server_url):
    llm = OpenAICompatibleLLM(base_url=server_url, model="fake", json_mode="json_object")
    assert llm._response_format({"type": "object"}, "facts") == {"type": "json_object", "schema": {"type": "object"}}
    messages = [{"role": "user", "content": "user: I own a boat"}]
    raw = await llm.complete_json(messages, facts_schema(4, 80), name="facts")
    assert json.loads(raw)["facts"] == ["I own a boat"]
    await llm.close()


async def test_unreachable_endpoint_is_a_typed_error():
    llm = OpenAICompatibleLLM(base_url="http://127.0.0.1:1/v1", model="x", timeout_s=2)
    with pytest.raises(BackendUnavailable, match="LLM endpoint"):
        await llm.complete_json([{"role": "user", "content": "x"}], {"type": "object"}, name="facts")
    await llm.close()


async def test_engine_over_http_llm(config, embedder, server_url):
    llm = OpenAICompatibleLLM(base_url=server_url, model="fake")
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        first = await memory.add("I live in Oslo and I like skiing", user_id="u")
        assert [r["event"] for r in first["results"]] == ["ADD", "ADD"]
        second = await memory.add("I like skiing", user_id="u")
        assert second["results"] == []  # the stand-in says NONE for a known fact
    await llm.close()
