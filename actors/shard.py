"""Shard actors: each hosts the engine for the owners that rendezvous hashing gives it.

A Ray actor is a whole process, so per-user actors are logical: one mailbox per active owner
inside the shard's engine (``runtime.mailbox``), which keeps each owner's writes in order
whatever order Ray delivers concurrent calls in. The shard owns its embedded stores (the
Edge shard and SQLite file admit one process); on a restart after a crash it reopens them
and re-applies whatever the journal holds that the index missed.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import msgspec
import ray

from actors.actor_process import prepare_actor_process
from actors.models import local_embedder
from actors.read_server import ReadServer
from actors.remote import RemoteEmbedder, RemoteLLM
from actors.replies import Reply, capture
from actors.resources import embedder_in_actors
from runtime import hops
from runtime.config import Config, OpenAIConfig
from runtime.embedders.batched import BatchedEmbedder
from runtime.engine import AsyncMemory
from runtime.errors import InvalidRequest
from runtime.events import ResyncRequired
from runtime.llms.counted import CountedLLM
from runtime.llms.factory import make_http_llm

# what a shard serves; everything else is refused (no getattr on caller-supplied names)
OPERATIONS = frozenset({"add", "search", "get", "get_all", "update", "delete", "delete_all", "history", "head",
                        "reset", "ingest", "read_events", "count", "owners", "flush"})



def shard_config(config: Config, index: int) -> Config:
    """Each shard keeps its embedded files in a folder of its own (shared services ignore it)."""
    return msgspec.structs.replace(config, data_dir=os.path.join(config.data_dir, f"shard-{index}"))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class ShardActor:
    def __init__(self, index: int, config: dict[str, Any], embedders: Any, extractors: Any, dims: int):
        """``embedders`` and ``extractors``: the model actor replicas (a list, or one handle). No
        extractors: this shard calls the HTTP LLM endpoint itself (``ray.llm_calls``)."""
        prepare_actor_process()
        self.index = index
        self.config = shard_config(msgspec.convert(config, Config), index)
        wait_s, cooldown_s = self.config.ray.restart_wait_s, self.config.ray.replica_cooldown_s
        if extractors:
            self.llm: Any = RemoteLLM(extractors, wait_s, cooldown_s)
        else:
            assert isinstance(self.config.llm, OpenAIConfig), "in-process LLM engines live in extractor actors"
            self.llm = CountedLLM(make_http_llm(self.config.llm))
        self.embedder = self._make_embedder(embedders, dims)
        self.memory = AsyncMemory(self.config, llm=self.llm, embedder=self.embedder)
        self.read_server = ReadServer(self._search_many, max_concurrent=self.config.ray.search_calls_per_shard * 4)

    def _make_embedder(self, embedders: Any, dims: int) -> Any:
        """The embedder actors (``ray.embed_in: actor``) or the model in this process (``shard``)."""
        ray_cfg = self.config.ray
        if not embedder_in_actors(self.config):
            return local_embedder(self.config.embedder, ray_cfg.embedder_threads, ray_cfg.embedder_max_batch,
                                  ray_cfg.embedder_max_wait_ms)
        return RemoteEmbedder(embedders, dims, ray_cfg.restart_wait_s, ray_cfg.replica_cooldown_s,
                              in_flight=ray_cfg.embed_calls_per_shard, max_batch=ray_cfg.embedder_max_batch)

    async def ready(self) -> bool:
        """Open the stores now (re-applying what the index missed) instead of on the first call."""
        await self.memory.open()
        return True

    async def call(self, operation: str, kwargs: dict[str, Any]) -> Reply:
        """The operation's result; on success ``extra["hops"]`` says where its time went here
        (``runtime.hops``: the embedder's round trip, the search, ``shard_ms`` in all)."""
        if operation == "search_many":
            return Reply(value=await self._search_many(kwargs["requests"]))
        if operation == "read_endpoint":
            return Reply(value=await self._read_endpoint())
        if operation not in OPERATIONS:
            return await capture(_refuse(operation))
        work = self._ingest(kwargs) if operation == "ingest" else getattr(self.memory, operation)(**kwargs)
        started = time.perf_counter()
        with hops.Trace() as trace:
            reply = await capture(work)
        if reply.error is not None:
            return reply
        trace["shard_ms"] = hops.since(started)
        return msgspec.structs.replace(reply, extra={"hops": trace})

    async def _search_many(self, requests: list[dict[str, Any]]) -> list[Reply]:
        """Searches a gateway sent in one call: run at once (their queries share one embedder call),
        each answered on its own - a bad one fails only itself. Each reply's hops end with the
        whole call's time here (``shard_ms``): no answer leaves before the last is done."""
        started = time.perf_counter()
        replies = [Reply()] * len(requests)

        async def one(index: int, kwargs: dict[str, Any]) -> None:
            with hops.Trace() as trace:
                replies[index] = await capture(self.memory.search(**kwargs))
            if replies[index].error is None:
                replies[index] = msgspec.structs.replace(replies[index], extra={"hops": trace})

        async with anyio.create_task_group() as tg:
            for index, kwargs in enumerate(requests):
                tg.start_soon(one, index, kwargs)
        total_ms = hops.since(started)
        for reply in replies:
            if reply.error is None:
                reply.extra["hops"]["shard_ms"] = total_ms
        return replies

    async def _read_endpoint(self) -> dict[str, str] | None:
        """Where processes on this node can send searches without a Ray call (``actors/read_server.py``);
        None with ``ray.direct_reads`` off."""
        if not self.config.ray.direct_reads:
            return None
        return {"node": ray.get_runtime_context().get_node_id(), "path": await self.read_server.start()}

    async def _ingest(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A turn whose facts (and vectors) were extracted upstream by the ingestion job."""
        outcome = await self.memory.add_detailed(**kwargs)
        return {"result": outcome.result, "replayed": outcome.replayed}

    async def subscribe(self, kwargs: dict[str, Any], batch: int = 256) -> AsyncIterator[bytes]:
        """A Ray streaming generator: encoded batches of events, replay first, then live.
        The consumer's pace bounds how far ahead Ray lets this run (generator backpressure)."""
        send, receive = anyio.create_memory_object_stream[Any](batch)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump, kwargs, send)
            async with receive:
                async for first in receive:
                    items = [first]
                    while len(items) < batch:
                        try:
                            items.append(receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    yield msgspec.msgpack.encode(items)
            tg.cancel_scope.cancel()

    async def _pump(self, kwargs: dict[str, Any], send: Any) -> None:
        async with send:
            try:
                stream = (self.memory.subscribe_tenant(tenant=kwargs.get("tenant")) if kwargs.get("tenant_wide")
                          else self.memory.subscribe(**kwargs))
                async with aclosing(stream) as events:
                    async for event in events:
                        await send.send(msgspec.to_builtins(event))
            except ResyncRequired as exc:
                await send.send({"type": "resync_required", "from_seq": exc.from_seq})
            except InvalidRequest as exc:
                await send.send({"type": "error", "code": exc.code, "message": str(exc)})

    def stats(self) -> dict[str, Any]:
        stats = {"index": self.index, "active_owners": self.memory.active_owners,
                 "subscribers": self.memory.hub.subscriber_count(), "add_ms": self.memory.add_times.summary()}
        if isinstance(self.llm, CountedLLM):
            stats["llm"] = self.llm.stats()
        if isinstance(self.embedder, BatchedEmbedder):
            stats["embedder"] = self.embedder.stats()
        return stats

    def clear_stats(self) -> None:
        self.memory.add_times.clear()

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


async def _refuse(operation: str) -> None:
    raise InvalidRequest(f"unknown operation {operation!r}")
