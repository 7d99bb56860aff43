"""The direct read channel without Ray: frames, the shard's socket server, the client's channel,
and the per-shard choice between the socket and a Ray call (with a router stand-in)."""

from __future__ import annotations

import os
import stat
import struct
from typing import Any

import anyio
import pytest

from actors.frames import ChannelBroken, frame
from actors.read_channel import DirectReads, ReadChannel, Retries
from actors.read_server import ReadServer
from actors.replies import Reply, unwrap
from runtime.errors import InvalidRequest


def test_retries_skip_a_doubling_number_of_batches_after_each_failure_in_a_row():
    retries = Retries(cap=8)
    assert retries.should_try()
    outcomes = []
    for _ in range(4):
        retries.failed()
        skipped = 0
        while not retries.should_try():
            skipped += 1
        outcomes.append(skipped)
    assert outcomes == [2, 4, 8, 8]  # capped
    retries.succeeded()
    assert retries.should_try() and retries.failures == 0


async def echo(requests: list[dict[str, Any]]) -> list[Reply]:
    return [Reply(value={"query": r["query"]}, extra={"hops": {"shard_ms": 0.1}}) if r["query"].strip()
            else Reply(error=InvalidRequest.code, message="empty query") for r in requests]


async def test_each_call_gets_its_own_replies_when_calls_overlap_on_one_connection():
    release_first = anyio.Event()

    async def handler(requests: list[dict[str, Any]]) -> list[Reply]:
        if requests[0]["query"] == "first":
            await release_first.wait()  # the second call is answered while the first is still out
        return await echo(requests)

    server = ReadServer(handler)
    channel = await ReadChannel.connect(await server.start())
    answers: dict[str, Any] = {}

    async def call(query: str) -> None:
        answers[query] = await channel.call([{"query": query}, {"query": " "}], timeout_s=30)
        if query == "second":
            release_first.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "first")
            tg.start_soon(call, "second")
    finally:
        channel.close()
        server.close()
    for query in ("first", "second"):
        ok, bad = answers[query]
        assert unwrap(ok) == {"query": query} and ok.extra["hops"] == {"shard_ms": 0.1}
        with pytest.raises(InvalidRequest, match="empty query"):
            unwrap(bad)  # the typed error crosses the socket like a Ray reply


async def test_the_socket_is_private_to_this_user_and_removed_on_close():
    server = ReadServer(echo)
    path = await server.start()
    assert await server.start() == path  # one socket, however often it is asked for
    folder = os.path.dirname(path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    server.close()
    assert not os.path.exists(folder)


async def test_a_closed_server_fails_the_waiting_call_with_channel_broken():
    entered, never = anyio.Event(), anyio.Event()

    async def stuck(requests: list[dict[str, Any]]) -> list[Reply]:
        entered.set()
        await never.wait()
        return []

    server = ReadServer(stuck)
    channel = await ReadChannel.connect(await server.start())
    failures: list[Exception] = []

    async def call() -> None:
        try:
            await channel.call([{"query": "q"}], timeout_s=60)
        except ChannelBroken as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await entered.wait()
        server.close()  # the listener and its connections go, as when the shard's process dies
    assert len(failures) == 1 and channel.broken is not None
    with pytest.raises(ChannelBroken):
        await channel.call([{"query": "again"}], timeout_s=60)
    with pytest.raises(ChannelBroken, match="cannot connect"):
        await ReadChannel.connect(os.path.join(os.path.dirname(__file__), "no-such.sock"))


async def test_an_oversized_or_garbled_frame_drops_only_that_connection():
    server = ReadServer(echo)
    path = await server.start()
    try:
        for junk in (struct.pack(">I", 2**31), frame(b"\xc1 not msgpack")):
            async with await anyio.connect_unix(path) as raw:
                await raw.send(junk)
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await raw.receive()
        channel = await ReadChannel.connect(path)  # the server still serves others
        [reply] = await channel.call([{"query": "fine"}], timeout_s=30)
        assert unwrap(reply) == {"query": "fine"}
        channel.close()
    finally:
        server.close()


async def test_a_handler_bug_answers_every_request_with_an_internal_error():
    async def broken(requests: list[dict[str, Any]]) -> list[Reply]:
        raise RuntimeError("boom")

    server = ReadServer(broken)
    channel = await ReadChannel.connect(await server.start())
    try:
        replies = await channel.call([{"query": "a"}, {"query": "b"}], timeout_s=30)
    finally:
        channel.close()
        server.close()
    assert [r.error for r in replies] == ["internal", "internal"] and "boom" in replies[0].message


class RouterStandIn:
    """What ``DirectReads`` asks of a ``Router``: the shard's read endpoint, or a Ray search."""

    def __init__(self, endpoint: dict[str, str] | None):
        self.endpoint = endpoint
        self.calls: list[str] = []

    async def call(self, shard: str, operation: str, kwargs: dict[str, Any]) -> Any:
        self.calls.append(operation)
        if operation == "read_endpoint":
            return self.endpoint
        return [Reply(value={"via": "ray"}) for _ in kwargs["requests"]]


async def test_searches_take_the_socket_on_this_node_and_ray_otherwise():
    server = ReadServer(echo)
    router = RouterStandIn({"node": "here", "path": await server.start()})
    direct = DirectReads(router, "here")  # type: ignore[arg-type]
    try:
        for _ in range(3):
            [reply] = await direct.search_many("shard-0", [{"query": "q"}])
            assert unwrap(reply) == {"query": "q"} and reply.extra["hops"]["read_socket_ms"] > 0
        assert router.calls == ["read_endpoint"] and direct.counts["socket"] == 3  # asked once, then reused

        elsewhere = DirectReads(RouterStandIn({"node": "other", "path": server.path}), "here")  # type: ignore
        [reply] = await elsewhere.search_many("shard-0", [{"query": "q"}])
        assert unwrap(reply) == {"via": "ray"} and elsewhere.counts == {"socket": 0, "ray": 1, "fallback": 0}

        off = DirectReads(router, "here", enabled=False)  # type: ignore[arg-type]
        [reply] = await off.search_many("shard-0", [{"query": "q"}])
        assert unwrap(reply) == {"via": "ray"}
    finally:
        direct.close()
        server.close()


async def test_a_broken_socket_sends_the_batch_over_ray_and_backs_off_by_count():
    entered, never = anyio.Event(), anyio.Event()

    async def stuck(requests: list[dict[str, Any]]) -> list[Reply]:
        entered.set()
        await never.wait()
        return []

    server = ReadServer(stuck)
    router = RouterStandIn({"node": "here", "path": await server.start()})
    direct = DirectReads(router, "here")  # type: ignore[arg-type]
    answers: list[Reply] = []

    async def search() -> None:
        answers.extend(await direct.search_many("shard-0", [{"query": "q"}]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(search)
        await entered.wait()
        server.close()  # the shard's process dies while the batch is out
    assert [unwrap(a) for a in answers] == [{"via": "ray"}]  # nothing lost: sent again over Ray
    assert direct.counts == {"socket": 0, "ray": 1, "fallback": 1}

    outcomes = []
    for _ in range(7):  # the restarted shard has no socket yet
        [reply] = await direct.search_many("shard-0", [{"query": "q"}])
        outcomes.append(unwrap(reply)["via"])
    assert outcomes == ["ray"] * 7
    # skip 2, one failed connect, skip 4: one more endpoint ask in seven batches, not seven
    assert router.calls.count("read_endpoint") == 2

    restarted = ReadServer(echo)
    router.endpoint = {"node": "here", "path": await restarted.start()}
    try:
        for _ in range(8):  # within the back-off bound, the socket is found again
            [reply] = await direct.search_many("shard-0", [{"query": "q"}])
        assert unwrap(reply) == {"query": "q"} and direct.counts["socket"] >= 1
    finally:
        direct.close()
        restarted.close()
