"""``ClusterMemory``: the memory API of ``AsyncMemory``, served by the shard actors.

Owner-scoped calls go to the owner's shard. Calls by memory id (get, update, delete, history)
do not say who the owner is, so they ask every shard and keep the one that knows the id.
Every write gets a request id (the caller's, or a fresh one) so a retry after a shard crash
is deduplicated by the journal instead of applied twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
import ray

from actors.cluster import MemoryCluster
from actors.read_channel import DirectReads
from actors.remote import RESTARTING
from actors.replies import Reply, unwrap
from actors.router import Router
from runtime import hops
from runtime.batching import MicroBatcher
from runtime.config import Config, load_config
from runtime.errors import MemstreamError, NotFound
from runtime.events import ResyncRequired
from runtime.model import (
    MemoryAdded,
    MemoryDeleted,
    MemoryEvent,
    MemoryUpdated,
    RelationAdded,
    RelationDeleted,
    RelationInvalidated,
    make_scope,
)

FLUSH_ON_CLOSE_S = 10.0  # a shard that is down or restarting is not waited for longer at close
_decode_batch = msgspec.msgpack.Decoder(list[dict[str, Any]]).decode
_EVENT_TYPES: dict[str, type] = {"memory_added": MemoryAdded, "memory_updated": MemoryUpdated,
                                 "memory_deleted": MemoryDeleted, "relation_added": RelationAdded,
                                 "relation_invalidated": RelationInvalidated, "relation_deleted": RelationDeleted}


class ClusterMemory:
    def __init__(self, config: Config | None = None, cluster: MemoryCluster | None = None):
        self.config = config or load_config()
        self.cluster = cluster or MemoryCluster(self.config)
        self._search_batchers: dict[str, MicroBatcher[dict[str, Any], Reply]] = {}
        self._batch_loop: asyncio.AbstractEventLoop | None = None
        self._direct: DirectReads | None = None

    async def open(self) -> ClusterMemory:
        if self.cluster.router is None:
            await self.cluster.start()
        return self

    async def close(self) -> None:
        """The actors outlive a client; its sockets to them do not. The shards are asked to flush
        (bounded, best effort): a server that stops then takes nothing to re-apply at its next start."""
        if self._direct is not None:
            self._direct.close()
            self._direct, self._batch_loop, self._search_batchers = None, None, {}  # rebuilt if used again
        if self.cluster.router is not None:
            with anyio.move_on_after(FLUSH_ON_CLOSE_S):
                await self.router.broadcast("flush", {})

    async def __aenter__(self) -> ClusterMemory:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def router(self) -> Router:
        assert self.cluster.router is not None, "ClusterMemory is not open"
        return self.cluster.router

    def _tenant(self, tenant: str | None) -> str:
        return tenant or self.config.tenant

    async def _owned(self, operation: str, tenant: str | None, scope_ids: dict[str, Any], **kwargs: Any) -> Any:
        """The call to the owner's shard; its hops (``runtime.hops``) are added to this process's totals."""
        scope = make_scope(scope_ids.get("user_id"), scope_ids.get("agent_id"), scope_ids.get("run_id"))
        tenant = self._tenant(tenant)
        with hops.Trace() as trace:
            result = await self.router.call_owner(tenant, scope.owner, operation,
                                                  {**scope.fields(), "tenant": tenant, **kwargs})
        hops.TOTALS.record(operation, trace)
        return result

    async def _by_id(self, operation: str, memory_id: str, **kwargs: Any) -> Any:
        results = await self.router.broadcast(operation, {"memory_id": memory_id, **kwargs})
        for result in results:
            if not isinstance(result, Exception):
                return result
        failures = [r for r in results if not isinstance(r, NotFound)]
        if failures:
            raise failures[0]
        raise results[0]

    # ---- writes ----
    async def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
                  run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
                  request_id: str | None = None, tenant: str | None = None) -> dict[str, Any]:
        return await self._owned("add", tenant, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id},
                                 messages=messages, metadata=metadata, infer=infer,
                                 request_id=request_id or str(uuid.uuid4()))

    async def update(self, memory_id: str, data: str, *, metadata: dict[str, Any] | None = None,
                     tenant: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        return await self._by_id("update", memory_id, data=data, metadata=metadata, tenant=self._tenant(tenant),
                                 request_id=request_id or str(uuid.uuid4()))

    async def delete(self, memory_id: str, *, tenant: str | None = None,
                     request_id: str | None = None) -> dict[str, Any]:
        return await self._by_id("delete", memory_id, tenant=self._tenant(tenant),
                                 request_id=request_id or str(uuid.uuid4()))

    async def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None, tenant: str | None = None) -> dict[str, Any]:
        return await self._owned("delete_all", tenant, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id})

    async def reset(self, *, tenant: str | None = None) -> dict[str, Any]:
        results = await self.router.broadcast("reset", {"tenant": self._tenant(tenant)})
        for result in results:
            if isinstance(result, Exception):
                raise result
        return {"message": "Memory store reset", "deleted": sum(r["deleted"] for r in results)}

    # ---- reads ----
    async def get(self, memory_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        return await self._by_id("get", memory_id, tenant=self._tenant(tenant))

    async def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                      tenant: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return await self._owned("get_all", tenant, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id},
                                 **kwargs)

    async def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
                     run_id: str | None = None, tenant: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Through the owner's shard's search batcher (``ray.search_batch``): one call carries the
        searches that arrived while that shard's previous calls were out - over the shard's read
        socket when it runs on this node (``ray.direct_reads``), else over Ray."""
        if not self.config.ray.search_batch:
            return await self._owned("search", tenant, {"user_id": user_id, "agent_id": agent_id,
                                                        "run_id": run_id}, query=query, **kwargs)
        scope = make_scope(user_id, agent_id, run_id)
        tenant = self._tenant(tenant)
        batcher = self._search_batcher(self.router.shard_of(tenant, scope.owner))
        with hops.Trace() as trace:
            [reply] = await batcher.submit([{**scope.fields(), "tenant": tenant, "query": query, **kwargs}])
            hops.merge(reply.extra.get("hops"))
        result = unwrap(reply)
        hops.TOTALS.record("search", trace)
        return result

    def _search_batcher(self, shard: str) -> MicroBatcher[dict[str, Any], Reply]:
        loop = asyncio.get_running_loop()
        if loop is not self._batch_loop:  # batchers and sockets belong to the event loop that runs them
            if self._direct is not None:
                self._direct.close()
            self._batch_loop, self._search_batchers = loop, {}
            self._direct = DirectReads(self.router, ray.get_runtime_context().get_node_id(),
                                       enabled=self.config.ray.direct_reads, timeout_s=self.config.ray.call_timeout_s)
        direct = self._direct
        assert direct is not None
        batcher = self._search_batchers.get(shard)
        if batcher is None:
            async def call(requests: list[dict[str, Any]]) -> list[Reply]:
                return await direct.search_many(shard, requests)

            batcher = self._search_batchers[shard] = MicroBatcher(
                call, max_batch=self.config.ray.search_batch, max_wait_s=0.0,
                max_in_flight=self.config.ray.search_calls_per_shard, name="shard_search")
        batcher.run_in_background()
        return batcher

    async def history(self, memory_id: str | None = None, *, user_id: str | None = None,
                      agent_id: str | None = None, run_id: str | None = None, tenant: str | None = None,
                      **kwargs: Any) -> list[dict[str, Any]]:
        if memory_id is not None:
            return await self._by_id("history", memory_id, tenant=self._tenant(tenant))
        return await self._owned("history", tenant, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id},
                                 **kwargs)

    async def head(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                   tenant: str | None = None) -> int:
        return await self._owned("head", tenant, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id})

    async def count(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                    tenant: str | None = None, **kwargs: Any) -> int:
        return await self._owned("count", tenant, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id},
                                 **kwargs)

    async def owners(self, *, tenant: str | None = None, counts: bool = False) -> list[dict[str, Any]]:
        """Every shard's owners, merged (shards that share a journal, as on PostgreSQL, list the same
        owners: each is kept once, at its highest head)."""
        merged: dict[str, dict[str, Any]] = {}
        for result in await self.router.broadcast("owners", {"tenant": self._tenant(tenant), "counts": counts}):
            if isinstance(result, Exception):
                raise result
            for row in result:
                kept = merged.get(row["owner"])
                if kept is None or row["head"] > kept["head"]:
                    merged[row["owner"]] = row
        return [merged[owner] for owner in sorted(merged)]

    async def read_events(self, *, user_id: str | None = None, agent_id: str | None = None,
                          run_id: str | None = None, after_seq: int = 0, limit: int = 500,
                          tenant: str | None = None) -> list[MemoryEvent]:
        return await self._owned("read_events", tenant, {"user_id": user_id, "agent_id": agent_id,
                                                         "run_id": run_id}, after_seq=after_seq, limit=limit)

    async def subscribe(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                        after_seq: int = 0, tenant: str | None = None) -> AsyncIterator[MemoryEvent]:
        """Events of one owner after ``after_seq``, in order. If the shard dies, the stream resumes
        from the last seq it delivered once the shard is back (no gap, no duplicate)."""
        scope = make_scope(user_id, agent_id, run_id)
        tenant = self._tenant(tenant)
        name = self.router.shard_of(tenant, scope.owner)
        last = after_seq
        while True:
            kwargs = {**scope.fields(), "tenant": tenant, "after_seq": last}
            stream = self.router.shards[name].subscribe.options(
                _generator_backpressure_num_objects=self.config.ray.event_backpressure,
            ).remote(kwargs, self.config.ray.event_batch)
            try:
                async for ref in stream:
                    for item in _decode_batch(await ref):
                        kind = item.get("type")
                        if kind == "resync_required":
                            raise ResyncRequired(int(item["from_seq"]))
                        if kind == "error":
                            raise MemstreamError(item.get("message", "subscription failed"))
                        event = msgspec.convert(item, _EVENT_TYPES[kind])
                        if event.seq <= last:
                            continue
                        last = event.seq
                        yield event
                return
            except RESTARTING:
                await self._wait_for(name)

    async def subscribe_tenant(self, *, tenant: str | None = None) -> AsyncIterator[MemoryEvent]:
        """Every owner's events in the tenant, live from now, merged from all shards (each owner's
        events stay in seq order). A shard restart is survived live-only: for a gapless resume,
        subscribe per owner with ``after_seq``."""
        tenant = self._tenant(tenant)
        send, receive = anyio.create_memory_object_stream[Any](self.config.ray.event_batch)

        async def follow(name: str) -> None:
            while True:
                stream = self.router.shards[name].subscribe.options(
                    _generator_backpressure_num_objects=self.config.ray.event_backpressure,
                ).remote({"tenant": tenant, "tenant_wide": True}, self.config.ray.event_batch)
                try:
                    async for ref in stream:
                        for item in _decode_batch(await ref):
                            await send.send(item)
                    return
                except RESTARTING:
                    await self._wait_for(name)

        async with anyio.create_task_group() as tg, send, receive:
            for name in self.router.names:
                tg.start_soon(follow, name)
            async for item in receive:
                kind = item.get("type")
                if kind == "resync_required":
                    raise ResyncRequired(int(item["from_seq"]))
                if kind == "error":
                    raise MemstreamError(item.get("message", "subscription failed"))
                yield msgspec.convert(item, _EVENT_TYPES[kind])
            tg.cancel_scope.cancel()

    async def _wait_for(self, name: str) -> None:
        """Block until the shard answers again (or the router gives up with a typed error)."""
        await self.router.call(name, "head", {"user_id": "__probe__"})
