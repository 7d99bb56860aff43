"""The OpenAI-compatible embeddings adapter against a real HTTP endpoint serving real MiniLM vectors."""

from __future__ import annotations

import pytest
from aiohttp import web

from runtime.embedders.openai import OpenAIEmbedder
from runtime.errors import BackendUnavailable
from tests.doubles import http_server


@pytest.fixture
async def embeddings_url(embedder):
    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = await embedder.embed(texts)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in reversed(list(enumerate(vectors)))]
        return web.json_response({"object": "list", "data": data, "model": body["model"],
                                  "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    app = web.Application()
    app.router.add_post("/v1/embeddings", handle)
    async with http_server(app) as url:
        yield url


async def test_vectors_come_back_in_input_order(embeddings_url, embedder):
    remote = OpenAIEmbedder(base_url=embeddings_url, model="all-MiniLM-L6-v2", dims=384)
    texts = ["I like tea", "The capital of France", "Dogs are loyal"]
    got, want = await remote.embed(texts), await embedder.embed(texts)
    assert len(got) == len(want) == 3
    for a, b in zip(got, want):
        assert a == pytest.approx(b, abs=1e-6)
    assert await remote.embed([]) == []
    await remote.close()


async def test_unreachable_embeddings_endpoint_is_a_typed_error():
    remote = OpenAIEmbedder(base_url="http://127.0.0.1:1/v1", model="m", dims=3, timeout_s=2)
    with pytest.raises(BackendUnavailable, match="embeddings"):
        await remote.embed(["x"])
    await remote.close()
