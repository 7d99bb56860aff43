"""A live gateway (real engine, embedded stores, MiniLM) and an HTTP client for its REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.gateway.conftest import LiveGateway, token

ADMIN = ["read", "write", "subscribe", "admin"]


class Rest:
    """Plain HTTP calls with ``Authorization: Token ...``: (status, decoded JSON body)."""

    def __init__(self, base: str, session: aiohttp.ClientSession, api_key: str | None):
        self.base = base
        self.session = session
        self.api_key = api_key

    def as_(self, api_key: str | None) -> Rest:
        return Rest(self.base, self.session, api_key)

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if self.api_key is not None:
            sent.setdefault("Authorization", f"Token {self.api_key}")
        async with self.session.request(method, self.base + path, json=json, data=data, params=params,
                                        headers=sent) as response:
            body = await response.read()
            assert response.content_type == "application/json", (response.status, body[:200])
            return response.status, await response.json()

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == 200, (status, body)
        return body


@pytest.fixture
async def rest(live: LiveGateway) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession() as session:
        yield Rest(live.http, session, token(rights=ADMIN))
