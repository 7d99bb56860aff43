"""Bootstrap of the actor runtime: start (or join) Ray, create the named actors, build a router.

Actors are named and created with ``get_if_exists``, so a second process (a gateway, an
ingestion job) that calls ``MemoryCluster.start`` with the same config attaches to the same
actors instead of creating new ones. The embedded default starts a local Ray instance;
``ray.address`` (or ``RAY_ADDRESS``) joins an existing cluster.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
import msgspec
import ray
import structlog

from actors.models import EmbedderActor, ExtractorActor
from actors.router import Router
from actors.routing import shard_names
from actors.shard import ShardActor
from runtime.config import Config

log = structlog.get_logger("memstream.cluster")

WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # one thread per worker unless an actor asks for more: on 2 busy cores torch's default pool
    # made a MiniLM embedding 10-25x slower than a single thread
    "OMP_NUM_THREADS": "1",
    "RAY_DEDUP_LOGS": "1",
}


def start_ray(config: Config) -> None:
    if ray.is_initialized():
        return
    # "local" forces a new instance: with no address Ray joins whatever cluster it last noted on
    # this machine (/tmp/ray/ray_current_cluster), even a dead one
    address = config.ray.address or os.environ.get("RAY_ADDRESS") or "local"
    ray.init(address=address, namespace=config.ray.namespace, include_dashboard=config.ray.include_dashboard,
             runtime_env={"env_vars": WORKER_ENV}, log_to_driver=True, logging_level="WARNING")


class MemoryCluster:
    """Handles to the runtime's actors, and the router over its shards."""

    def __init__(self, config: Config):
        self.config = config
        self.embedder: Any = None
        self.extractor: Any = None
        self.shards: dict[str, Any] = {}
        self.router: Router | None = None

    async def start(self, *, warm_llm: bool = True) -> MemoryCluster:
        cfg = self.config
        # not in a worker thread: Ray ties its GCS and raylet to the life of the thread that started
        # them (parent-death signal), and anyio retires idle worker threads after 10 s
        start_ray(cfg)
        common = {"namespace": cfg.ray.namespace, "get_if_exists": True}
        self.embedder = EmbedderActor.options(name="embedder", **common).remote(
            msgspec.to_builtins(cfg.embedder), cfg.ray.embedder_max_batch, cfg.ray.embedder_max_wait_ms,
            cfg.ray.embedder_threads)
        self.extractor = ExtractorActor.options(
            name="extractor", max_concurrency=cfg.ray.extractor_max_concurrency,
            runtime_env={"env_vars": {**WORKER_ENV, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}}, **common,
        ).remote(msgspec.to_builtins(cfg.llm))
        dims = await self.embedder.dims.remote()
        config_dict = msgspec.to_builtins(cfg)
        for index, name in enumerate(shard_names(cfg.ray.shards)):
            self.shards[name] = ShardActor.options(
                name=name, max_concurrency=cfg.ray.shard_max_concurrency, scheduling_strategy="SPREAD", **common,
            ).remote(index, config_dict, self.embedder, self.extractor, dims)
        async with anyio.create_task_group() as tg:
            for handle in self.shards.values():
                tg.start_soon(_ready, handle)
            if warm_llm:
                tg.start_soon(_warm, self.extractor)
        self.router = Router(self.shards, call_timeout_s=cfg.ray.call_timeout_s,
                             restart_wait_s=cfg.ray.restart_wait_s)
        log.info("cluster_ready", shards=len(self.shards), ray_address=cfg.ray.address or "local")
        return self

    async def stats(self) -> dict[str, Any]:
        return {
            "embedder": await self.embedder.stats.remote(),
            "extractor": await self.extractor.stats.remote(),
            "shards": [await handle.stats.remote() for handle in self.shards.values()],
            "router_retries": self.router.retries if self.router else 0,
        }

    async def stop(self) -> None:
        """Kill the actors of this runtime (Ray itself stays up for the process)."""
        if self.extractor is not None:
            try:
                await self.extractor.shutdown.remote()
            except ray.exceptions.RayActorError:
                pass
        for handle in [*self.shards.values(), self.embedder, self.extractor]:
            if handle is not None:
                ray.kill(handle, no_restart=True)
        self.shards.clear()


async def _ready(handle: Any) -> None:
    await handle.ready.remote()


async def _warm(extractor: Any) -> None:
    log.info("llm_starting")
    await extractor.warm.remote()
    log.info("llm_ready")
