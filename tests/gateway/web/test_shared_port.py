"""WebSocket and plain HTTP on one port, at the socket level: heads that arrive a byte at a time,
keep-alive connections that mix pages and the REST API, a WebSocket beside them, and sockets that
never say what they want."""

from __future__ import annotations

import asyncio
import functools
import json

import anyio
from websockets.asyncio.server import serve

from gateway.keepalive import GatewayConnection
from gateway.web.shared_port import SharedPortConnection
from tests.gateway.conftest import LiveGateway, raw_client, token


async def exchange(port: int, request: bytes, *, chunk: int | None = None) -> bytes:
    """Send ``request`` (in ``chunk``-byte writes when given) and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    step = chunk or len(request)
    for start in range(0, len(request), step):
        writer.write(request[start:start + step])
        await writer.drain()
    with anyio.fail_after(30):  # a safety net: the test waits for the server to close
        answer = await reader.read()
    writer.close()
    return answer


async def test_a_post_sent_byte_by_byte_and_keep_alive_requests_are_answered(live: LiveGateway):
    port = live.gateway.port
    body = json.dumps({"messages": "Likes plums", "user_id": "ida", "infer": False, "async_mode": False}).encode()
    request = (b"POST /v3/memories/add/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Token " + token().encode() + b"\r\nContent-Length: " + str(len(body)).encode()
               + b"\r\n\r\n" + body
               + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # the same connection, then a page
               + b"GET /v1/memories/?user_id=ida HTTP/1.1\r\nHost: x\r\nAuthorization: Token "
               + token().encode() + b"\r\nConnection: close\r\n\r\n")
    answer = await exchange(port, request, chunk=1)
    assert answer.count(b"HTTP/1.1 200 OK") == 3, answer[:500]
    assert b'"event":"ADD"' in answer and b'"status": "ok"' in answer and b'"memory":"Likes plums"' in answer
    ws, client = await raw_client(live.url, auth=token())  # a WebSocket on the same port meanwhile
    async with ws:
        found = await client.call({"type": "search", "id": 1, "query": "plums", "user_id": "ida"})
        assert found["data"]["results"][0]["memory"] == "Likes plums"


async def test_a_silent_socket_is_dropped_and_a_cut_head_costs_nothing():
    """A socket that never completes its head is closed after the head timeout; one that leaves
    half-way is forgotten (neither websockets nor the HTTP application ever saw it)."""
    handled: list[object] = []

    async def handler(connection) -> None:
        handled.append(connection)

    def http_protocol() -> asyncio.Protocol:
        raise AssertionError("no HTTP request was complete")

    factory = functools.partial(SharedPortConnection, http=http_protocol, head_timeout_s=0.3)
    async with serve(handler, "127.0.0.1", 0, create_connection=factory) as server:
        port = server.sockets[0].getsockname()[1]
        assert await exchange(port, b"GET /ws HTTP/1.1\r\nHost: x\r\n") == b""  # closed by the server
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    assert handled == [] and issubclass(SharedPortConnection, GatewayConnection)
