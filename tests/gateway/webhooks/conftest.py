"""A live gateway whose webhooks retry quickly, a real receiver, and the REST client to admin them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.server import Gateway
from runtime.config import Config
from runtime.engine import AsyncMemory
from tests.doubles import http_server
from tests.gateway.conftest import running_gateway, token
from tests.gateway.rest.conftest import ADMIN, Rest
from tests.gateway.webhooks.receiver import Receiver

FAST = dict(poll_s=0.2, lease_s=3.0, backoff_base_s=0.02, backoff_max_s=0.1, max_attempts=1000, timeout_s=5.0)


def webhook_config(config: Config, **settings: Any) -> Config:
    return msgspec.structs.replace(config, webhooks=msgspec.structs.replace(config.webhooks, **{**FAST, **settings}))


@asynccontextmanager
async def serving(config: Config, memory: AsyncMemory) -> AsyncIterator[tuple[Gateway, Rest]]:
    """A gateway over ``memory`` and an admin REST client for it, until the block ends."""
    async with running_gateway(config, memory) as gateway, aiohttp.ClientSession() as session:
        await gateway.web.webhooks.deliveries.leading.wait()
        yield gateway, Rest(f"http://127.0.0.1:{gateway.port}", session, token(rights=ADMIN))


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with http_server(found.app()) as base:
        yield found, base.removesuffix("/v1") + "/hook"


async def register(rest: Rest, url: str, **extra: Any) -> dict[str, Any]:
    return await rest.ok("POST", "/api/v1/webhooks/projects/default/", json={"url": url, "name": "test", **extra})


async def add(rest: Rest, text: str, user: str) -> dict[str, Any]:
    return await rest.ok("POST", "/v3/memories/add/", json={"messages": text, "user_id": user, "infer": False,
                                                            "async_mode": False})
