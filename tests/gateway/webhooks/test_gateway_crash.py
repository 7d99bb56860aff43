"""``memstream serve`` SIGKILLed in the middle of webhook deliveries, then started again on the same
data folder: the new process takes the delivery lease once the dead one's expires and resumes
every owner from its persisted cursor — nothing lost, order kept, at most the one in-flight event
of each owner delivered twice (same seq)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anyio

from tests.doubles import http_server
from tests.gateway.rest.conftest import Rest
from tests.gateway.served import Served
from tests.gateway.webhooks.conftest import add, register
from tests.gateway.webhooks.receiver import Receiver

OWNERS = ["kai", "lea", "max"]
TURNS = 8
SETTINGS = {"MEMSTREAM_WEBHOOKS__POLL_S": "0.2", "MEMSTREAM_WEBHOOKS__LEASE_S": "2",
            "MEMSTREAM_WEBHOOKS__BACKOFF_BASE_S": "0.05", "MEMSTREAM_WEBHOOKS__BACKOFF_MAX_S": "0.2"}


async def test_kill_9_of_the_delivering_gateway_then_restart_loses_nothing(tmp_path: Path):
    receiver = Receiver(delay_s=0.02)  # slow enough that the kill lands with deliveries in flight
    data = tmp_path / "data"
    async with http_server(receiver.app()) as base, aiohttp.ClientSession() as session:
        first = Served(data, SETTINGS)
        try:
            await anyio.to_thread.run_sync(first.wait_ready)
            rest = Rest(first.url, session, first.token)
            receiver.secret = (await register(rest, base.removesuffix("/v1") + "/hook"))["secret"]
            for turn in range(TURNS):
                for owner in OWNERS:
                    await add(rest, f"{owner} note {turn}", owner)
            with anyio.fail_after(120):
                await receiver.progress.reached(len(OWNERS) * TURNS // 3)
            first.kill()
        finally:
            first.stop()
        delivered_at_kill = len(receiver.received)
        second = Served(data, SETTINGS)
        try:
            await anyio.to_thread.run_sync(second.wait_ready)
            with anyio.fail_after(120):  # a safety net: the wait is on the receiver's count
                await receiver.until_complete({f"user:{owner}": TURNS for owner in OWNERS})
        finally:
            second.stop()
    assert delivered_at_kill < len(OWNERS) * TURNS  # the kill did land during the deliveries
    duplicates = receiver.check_order_and_signatures()
    assert all(count <= 1 for count in duplicates.values()), duplicates
    for owner in OWNERS:
        assert [d["event_details"]["data"]["memory"] for d in receiver.by_owner(f"user:{owner}")] == [
            f"{owner} note {turn}" for turn in range(TURNS)]
