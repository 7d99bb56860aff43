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
from actors.placement import remove_placement_groups, start_replicas
from actors.ray_node import WORKER_ENV, start_ray
from actors.resources import ActorPlan, ClusterShape, plan_model_actors
from actors.router import Router
from actors.routing import shard_names
from actors.shard import ShardActor
from runtime.config import Config

log = structlog.get_logger("memstream.cluster")

__all__ = ["WORKER_ENV", "MemoryCluster", "merge_stats", "start_ray"]  # the bootstrap's public names


class MemoryCluster:
    """Handles to the runtime's actors, and the router over its shards."""

    def __init__(self, config: Config):
        self.config = config
        self.embedder: Any = None  # replica 0 of each model actor
        self.extractor: Any = None
        self.embedders: list[Any] = []
        self.extractors: list[Any] = []
        self.plans: dict[str, ActorPlan] = {}
        self.shards: dict[str, Any] = {}
        self.router: Router | None = None

    async def start(self, *, warm_llm: bool = True) -> MemoryCluster:
        cfg = self.config
        # not in a worker thread: Ray ties its GCS and raylet to the life of the thread that started
        # them (parent-death signal), and anyio retires idle worker threads after 10 s
        start_ray(cfg)
        common = {"namespace": cfg.ray.namespace, "get_if_exists": True}
        # GPUs per actor kind, checked against the cluster: a bad fit fails here, not as pending actors
        self.plans = plan_model_actors(cfg, ClusterShape.from_ray())
        if "embedder" in self.plans:  # else each shard runs the embedding model itself
            self.embedders = await start_replicas(
                EmbedderActor, self.plans["embedder"], cfg.ray.namespace,
                (msgspec.to_builtins(cfg.embedder), cfg.ray.embedder_max_batch, cfg.ray.embedder_max_wait_ms,
                 cfg.ray.embedder_threads))
        if "extractor" in self.plans:  # else the shards call the HTTP LLM endpoint themselves
            self.extractors = await start_replicas(
                ExtractorActor, self.plans["extractor"], cfg.ray.namespace, (msgspec.to_builtins(cfg.llm),),
                max_concurrency=cfg.ray.extractor_max_concurrency,
                runtime_env={"env_vars": {**WORKER_ENV, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}})
        self.embedder = self.embedders[0] if self.embedders else None
        self.extractor = self.extractors[0] if self.extractors else None
        dims = await self.embedder.dims.remote() if self.embedder else 0  # 0: the shard's own model says
        config_dict = msgspec.to_builtins(cfg)
        for index, name in enumerate(shard_names(cfg.ray.shards)):
            self.shards[name] = ShardActor.options(
                name=name, max_concurrency=cfg.ray.shard_max_concurrency, scheduling_strategy="SPREAD",
                resources=dict(cfg.ray.shard_resources), **common,
            ).remote(index, config_dict, self.embedders, self.extractors, dims)
        async with anyio.create_task_group() as tg:
            for handle in self.shards.values():
                tg.start_soon(_ready, handle)
            if warm_llm:
                for extractor in self.extractors:
                    tg.start_soon(_warm, extractor)
        self.router = Router(self.shards, call_timeout_s=cfg.ray.call_timeout_s,
                             restart_wait_s=cfg.ray.restart_wait_s)
        log.info("cluster_ready", shards=len(self.shards), ray_address=cfg.ray.address or "local")
        return self

    async def stats(self) -> dict[str, Any]:
        """Batching statistics. ``llm``: calls and peak calls in flight, counted by the extractor
        replicas, or by the shards when they call the endpoint themselves (``route``)."""
        extractors = [await handle.stats.remote() for handle in self.extractors]
        shards = [await handle.stats.remote() for handle in self.shards.values()]
        embedders = [await handle.stats.remote() for handle in self.embedders] or [
            s["embedder"] for s in shards if "embedder" in s]  # ray.embed_in: shard
        counted = [s["llm"] for s in shards if "llm" in s]  # shards that call the endpoint themselves
        if extractors:
            llm = {"route": "extractor", **merge_stats(extractors)}
        elif counted:  # peaks are per shard
            llm = {"route": "shard", **merge_stats(counted), "shards": len(counted)}
            llm.pop("replicas", None)
        else:
            llm = {}
        return {
            "embedder": merge_stats(embedders),
            "llm": llm,
            "replicas": {"embedder": embedders, "extractor": extractors},
            "shards": shards,
            "router_retries": self.router.retries if self.router else 0,
        }

    async def stop(self) -> None:
        """Kill the actors of this runtime (Ray itself stays up for the process)."""
        for extractor in self.extractors:
            try:
                await extractor.shutdown.remote()
            except ray.exceptions.RayActorError:
                pass
        for handle in [*self.shards.values(), *self.embedders, *self.extractors]:
            ray.kill(handle, no_restart=True)
        for plan in self.plans.values():
            remove_placement_groups(plan, self.config.ray.namespace)
        self.shards.clear()
        self.embedders, self.extractors = [], []
        self.router = None


def merge_stats(replicas: list[dict[str, Any]]) -> dict[str, Any]:
    """One view of several replicas' counters: sums, except peaks and maxima (max) and the mean batch."""
    if len(replicas) == 1:
        return replicas[0]
    merged: dict[str, Any] = {}
    for stats in replicas:
        for key, value in stats.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if key.startswith(("peak", "max")):
                merged[key] = max(merged.get(key, value), value)
            else:
                merged[key] = merged.get(key, 0) + value
    if merged.get("batches"):
        merged["mean_batch"] = round(merged["items"] / merged["batches"], 2)
    merged["replicas"] = len(replicas)
    return merged


async def _ready(handle: Any) -> None:
    await handle.ready.remote()


async def _warm(extractor: Any) -> None:
    log.info("llm_starting")
    await extractor.warm.remote()
    log.info("llm_ready")
