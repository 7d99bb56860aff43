"""The OpenAI-compatible HTTP client against real aiohttp servers that misbehave on purpose."""

from __future__ import annotations

from contextlib import AsyncExitStack

import msgspec
import pytest
from aiohttp import web

from runtime.errors import BackendUnavailable
from runtime.http import OpenAIEndpoint
from tests.doubles import http_server


class Echo(msgspec.Struct):
    seen: int
    auth: str | None = None


@pytest.fixture
async def serve():
    async with AsyncExitStack() as stack:
        async def start(handler) -> str:
            app = web.Application()
            app.router.add_post("/v1/thing", handler)
            return await stack.enter_async_context(http_server(app))

        yield start


async def test_overload_is_retried_once_then_answered(serve, monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "sk-test")
    calls = []

    async def flaky(request: web.Request) -> web.Response:
        calls.append(await request.json())
        if len(calls) == 1:
            return web.Response(status=503, text="warming up")
        return web.json_response({"seen": len(calls), "auth": request.headers.get("Authorization")})

    endpoint = OpenAIEndpoint(await serve(flaky), what="test endpoint", backend="llm", api_key_env="TEST_API_KEY")
    assert await endpoint.post("thing", {"x": 1}, Echo) == Echo(seen=2, auth="Bearer sk-test")
    assert calls == [{"x": 1}, {"x": 1}]
    await endpoint.close()


async def test_a_refused_request_is_not_retried_and_says_why(serve):
    calls = []

    async def refuse(request: web.Request) -> web.Response:
        calls.append(1)
        return web.Response(status=400, text="unknown model 'nope'")

    endpoint = OpenAIEndpoint(await serve(refuse), what="test endpoint", backend="llm")
    with pytest.raises(BackendUnavailable, match=r"refused the request: HTTP 400: unknown model 'nope'") as failure:
        await endpoint.post("thing", {}, Echo)
    assert failure.value.backend == "llm" and calls == [1]
    await endpoint.close()


async def test_a_body_that_is_not_the_api_is_a_typed_error(serve):
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy error</html>", content_type="text/html")

    endpoint = OpenAIEndpoint(await serve(garbage), what="test endpoint", backend="embedder")
    with pytest.raises(BackendUnavailable, match="not an OpenAI-compatible response"):
        await endpoint.post("thing", {}, Echo)
    await endpoint.close()


async def test_a_slow_endpoint_times_out_as_unavailable(serve):
    import anyio

    answer = anyio.Event()

    async def slow(request: web.Request) -> web.Response:
        await answer.wait()  # answers only after the client has given up, however long that took
        return web.json_response({"seen": 1})

    endpoint = OpenAIEndpoint(await serve(slow), what="test endpoint", backend="llm", timeout_s=0.2, retries=0)
    try:
        with pytest.raises(BackendUnavailable, match="test endpoint unavailable .*TimeoutError"):
            await endpoint.post("thing", {}, Echo)
    finally:
        answer.set()
        await endpoint.close()
