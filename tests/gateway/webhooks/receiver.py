"""A real HTTP webhook receiver for the tests: records every delivery, checks signatures with its
own HMAC (the scheme the README documents, not memstream's code), and can be switched down."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import anyio
from aiohttp import web

from tests.progress import Progress


def signed_correctly(secret: str, header: str, body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


class Receiver:
    def __init__(self, secret: str | None = None, delay_s: float = 0.0):
        self.secret = secret
        self.delay_s = delay_s  # how long each delivery takes to answer (a slow receiver)
        self.received: list[tuple[str, bytes]] = []  # (signature header, body) in arrival order
        self.down = False  # answer 503, as a receiver that is deploying would
        self.refused = 0
        self.progress = Progress()
        self.refusals = Progress()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        if self.down:
            self.refused += 1
            self.refusals.add()
            return web.Response(status=503)
        self.received.append((request.headers.get("X-Memstream-Signature", ""), body))
        self.progress.add()
        return web.Response(status=204)

    def deliveries(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def by_owner(self, owner: str) -> list[dict[str, Any]]:
        """The owner's deliveries, first arrival of each seq only, in arrival order."""
        seen: set[int] = set()
        out = []
        for delivery in self.deliveries():
            if delivery["owner"] == owner and delivery["seq"] not in seen:
                seen.add(delivery["seq"])
                out.append(delivery)
        return out

    def complete(self, heads: dict[str, int]) -> bool:
        return all({d["seq"] for d in self.by_owner(owner)} >= set(range(1, head + 1)) for owner, head in heads.items())

    async def until_complete(self, heads: dict[str, int]) -> None:
        """Until every owner's seqs 1..head have arrived."""
        while not self.complete(heads):
            await self.progress.reached(self.progress.count + 1)

    def check_order_and_signatures(self) -> dict[str, int]:
        """Every delivery is signed with the secret; each owner's seqs arrive in order, a repeat only of
        a seq already delivered (at-least-once). Returns the duplicates per owner."""
        assert self.secret is not None
        last: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        for header, body in self.received:
            assert signed_correctly(self.secret, header, body), header
            delivery = json.loads(body)
            owner, seq = delivery["owner"], delivery["seq"]
            if seq <= last.get(owner, 0):
                duplicates[owner] = duplicates.get(owner, 0) + 1
                continue
            assert seq == last.get(owner, 0) + 1, f"{owner}: seq {seq} after {last.get(owner, 0)} (a gap)"
            last[owner] = seq
        return duplicates
