"""The model actors: one extractor (LLM) and one embedder shared by every shard.

The extractor keeps many requests in flight (vLLM batches them continuously); the embedder
micro-batches texts from all shards into one model call (at once when idle; what arrives during
a call goes in the next). Both report their batching statistics.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import msgspec
import ray

from actors.actor_process import prepare_actor_process
from actors.replies import Reply, capture
from runtime import hops
from runtime.config import EmbedderConfig, LLMConfig, SentenceTransformersConfig
from runtime.embedders import make_embedder
from runtime.embedders.batched import BatchedEmbedder
from runtime.llms import make_llm
from runtime.llms.counted import CountedLLM


def placement() -> dict[str, Any]:
    """What Ray gave this actor: its node, resources, GPU ids and placement group (for checks and ops)."""
    context = ray.get_runtime_context()
    group = ray.util.get_current_placement_group()
    return {"node": context.get_node_id(), "resources": context.get_assigned_resources(),
            "gpu_ids": [str(i) for i in ray.get_gpu_ids()], "placement_group": group.id.hex() if group else None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def with_threads(section: EmbedderConfig, threads: int) -> EmbedderConfig:
    """The embedder section with the CPU threads a model process gets (``ray.embedder_threads``): the
    model shares the machine with the other actors, so its thread count is set, not left to torch."""
    if isinstance(section, SentenceTransformersConfig):
        return msgspec.structs.replace(section, threads=threads)
    return section


def local_embedder(section: EmbedderConfig, threads: int, max_batch: int, max_wait_ms: float) -> BatchedEmbedder:
    """The model in this process, its callers' texts micro-batched: the embedder actor's, or a shard's
    own (``ray.embed_in: shard``)."""
    return BatchedEmbedder(make_embedder(with_threads(section, threads)), max_batch=max_batch,
                           max_wait_s=max_wait_ms / 1000)


@ray.remote(num_cpus=0, max_restarts=-1)
class EmbedderActor:
    def __init__(self, section: dict[str, Any], max_batch: int, max_wait_ms: float, threads: int):
        prepare_actor_process()
        self._embedder = local_embedder(msgspec.convert(section, EmbedderConfig), threads, max_batch, max_wait_ms)

    def dims(self) -> int:
        return self._embedder.dims

    async def embed(self, texts: list[str]) -> Reply:
        """The vectors, and (``extra["hops"]``) how long these texts waited here and the model call took."""
        with hops.Trace() as trace:
            reply = await capture(self._embedder.embed(texts))
        return reply if reply.error is not None else msgspec.structs.replace(reply, extra={"hops": trace})

    def stats(self) -> dict[str, Any]:
        return self._embedder.stats()

    def pid(self) -> int:
        return os.getpid()

    def placement(self) -> dict[str, Any]:
        return placement()


@ray.remote(num_cpus=0, max_restarts=-1)
class ExtractorActor:
    def __init__(self, section: dict[str, Any]):
        prepare_actor_process()
        self._section = msgspec.convert(section, LLMConfig)
        self._llm: CountedLLM | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> CountedLLM:
        async with self._lock:
            if self._llm is None:
                self._llm = CountedLLM(await make_llm(self._section))
        return self._llm

    async def warm(self) -> bool:
        """Start the LLM backend now (vLLM's engine takes tens of seconds) rather than on the first turn."""
        await self._get()
        return True

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], name: str) -> Reply:
        return await capture(self._complete(messages, schema, name))

    async def _complete(self, messages: list[dict[str, str]], schema: dict[str, Any], name: str) -> str:
        llm = await self._get()
        return await llm.complete_json(messages, schema, name=name)

    def stats(self) -> dict[str, Any]:
        return self._llm.stats() if self._llm is not None else {"calls": 0, "peak_in_flight": 0}

    def pid(self) -> int:
        return os.getpid()

    def placement(self) -> dict[str, Any]:
        return placement()

    async def shutdown(self) -> None:
        if self._llm is not None:
            await self._llm.close()
            self._llm = None
