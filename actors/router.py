"""Reaching an owner's shard from any process: the gateway, the ingestion job, a script.

Calls to a shard that is restarting (its process died; Ray brings it back) are retried with
backoff for up to ``restart_wait_s``, then fail with a typed error. Retrying is safe because
every write carries a request id that the journal deduplicates.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from actors.remote import through_restarts
from actors.replies import unwrap
from actors.routing import owner_key, pick
from runtime import hops
from runtime.errors import BackendUnavailable


class Router:
    def __init__(self, shards: dict[str, Any], *, call_timeout_s: float = 300.0, restart_wait_s: float = 60.0):
        if not shards:
            raise ValueError("a router needs at least one shard")
        self.shards = shards
        self.names = sorted(shards)
        self.call_timeout_s = call_timeout_s
        self.restart_wait_s = restart_wait_s
        self.retries = 0

    def shard_of(self, tenant: str, owner: str) -> str:
        return pick(owner_key(tenant, owner), self.names)

    async def call(self, name: str, operation: str, kwargs: dict[str, Any]) -> Any:
        """The shard's answer; its hops and the call's round trip (``shard_call_ms``) go to the trace."""
        async def once() -> Any:
            started = time.perf_counter()
            try:
                with anyio.fail_after(self.call_timeout_s):
                    reply = await self.shards[name].call.remote(operation, kwargs)
            except TimeoutError:
                raise BackendUnavailable(f"{name} did not answer {operation} within {self.call_timeout_s}s",
                                         backend="shard") from None
            if reply.error is None:
                hops.add("shard_call_ms", hops.since(started))
                hops.merge(reply.extra.get("hops"))
            return unwrap(reply)

        return await through_restarts(once, what=name, backend="shard", wait_s=self.restart_wait_s,
                                      on_retry=self._count_retry)

    def _count_retry(self) -> None:
        self.retries += 1

    async def call_owner(self, tenant: str, owner: str, operation: str, kwargs: dict[str, Any]) -> Any:
        return await self.call(self.shard_of(tenant, owner), operation, kwargs)

    async def broadcast(self, operation: str, kwargs: dict[str, Any]) -> list[Any]:
        """Run on every shard; results (or the typed errors) in shard-name order."""
        results: list[Any] = [None] * len(self.names)

        async def one(i: int, name: str) -> None:
            try:
                results[i] = await self.call(name, operation, kwargs)
            except Exception as exc:  # collected, the caller decides
                results[i] = exc

        async with anyio.create_task_group() as tg:
            for i, name in enumerate(self.names):
                tg.start_soon(one, i, name)
        return results
