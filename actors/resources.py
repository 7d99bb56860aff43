"""Where the model actors run: the config and the Ray cluster's shape in, Ray actor options out.

Pure decision logic (tested without Ray), so a bad deployment fails at start with a message
that names the setting, instead of actors that Ray leaves pending forever while calls wait.

The extractor hosts vLLM's engine. With ``tensor_parallel_size`` N on GPUs:

- ``distributed_executor_backend: mp`` (default): the actor asks Ray for N GPUs, so Ray gives
  it N GPUs of one node (``CUDA_VISIBLE_DEVICES``) and vLLM's multiprocessing executor starts
  its N workers there. Tensor parallelism wants the GPUs of one node anyway (NVLink).
- ``ray``: the replica gets a placement group of N one-GPU bundles (vLLM refuses bundles with
  more than one GPU) and the actor itself sits in bundle 0 asking for no GPU; vLLM (0.32) passes
  the placement group of the actor it runs in to its engine process and puts a worker on each
  bundle. ``ray.extractor_placement`` says how the bundles are spread (STRICT_PACK: one node).

On the CPU build (no GPUs in the cluster, or ``device: cpu``) every model actor asks for no
GPU, and tensor parallelism is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from runtime.config import Config, OpenAIEmbedderConfig, SentenceTransformersConfig, VLLMConfig, VLLMEmbedderConfig
from runtime.errors import ConfigError


@dataclass(frozen=True)
class ClusterShape:
    """The GPUs of each alive node of the Ray cluster."""

    node_gpus: tuple[float, ...] = ()

    @property
    def total_gpus(self) -> float:
        return sum(self.node_gpus)

    @property
    def max_node_gpus(self) -> float:
        return max(self.node_gpus, default=0.0)

    @classmethod
    def from_ray(cls) -> ClusterShape:
        import ray

        return cls(tuple(float(node["Resources"].get("GPU", 0)) for node in ray.nodes() if node.get("Alive")))


class ActorPlan(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    replicas: int
    options: dict[str, Any]  # for ``ActorClass.options(...)``
    on_gpu: bool = False
    gpus_per_replica: float = 0.0  # what one replica takes from the cluster, bundles included
    bundles: list[dict[str, float]] | None = None  # one placement group per replica
    strategy: str | None = None


def _gpu_wanted(device: str, shape: ClusterShape, field: str) -> bool:
    if device == "cpu":
        return False
    if device.startswith("cuda"):
        if shape.total_gpus <= 0:
            raise ConfigError(f"{field} is {device!r} but the Ray cluster has no GPUs (start the Ray nodes with "
                              "their GPUs, or set it to 'cpu')")
        return True
    return shape.total_gpus > 0  # auto


def extractor_plan(config: Config, shape: ClusterShape) -> ActorPlan:
    llm, ray_cfg = config.llm, config.ray
    common = {"kind": "extractor", "replicas": ray_cfg.extractor_replicas}
    cpus = ray_cfg.extractor_cpus
    if not isinstance(llm, VLLMConfig):  # an HTTP client of some server: no accelerator here
        return ActorPlan(options={"num_cpus": cpus, "num_gpus": 0}, **common)
    tp = llm.tensor_parallel_size
    if not _gpu_wanted(llm.device, shape, "llm.device"):
        if tp > 1:
            raise ConfigError(f"llm.tensor_parallel_size is {tp}, but the extractor runs on the vLLM CPU build "
                              "(the Ray cluster has no GPUs, or llm.device is 'cpu'): tensor parallelism needs "
                              "CUDA GPUs here; set llm.tensor_parallel_size to 1")
        return ActorPlan(options={"num_cpus": cpus, "num_gpus": 0}, **common)
    if tp == 1 or llm.distributed_executor_backend == "mp":
        if tp > shape.max_node_gpus:
            raise ConfigError(f"llm.tensor_parallel_size is {tp} with distributed_executor_backend 'mp', which needs "
                              f"{tp} GPUs on one node; the largest node of the Ray cluster has "
                              f"{shape.max_node_gpus:g} (use 'ray' to span nodes)")
        return ActorPlan(options={"num_cpus": cpus, "num_gpus": tp}, on_gpu=True, gpus_per_replica=tp, **common)
    strategy = ray_cfg.extractor_placement
    if strategy == "STRICT_PACK" and tp > shape.max_node_gpus:
        raise ConfigError(f"llm.tensor_parallel_size is {tp} with ray.extractor_placement STRICT_PACK (one node), "
                          f"but the largest node of the Ray cluster has {shape.max_node_gpus:g} GPUs")
    bundles = [{"GPU": 1.0, "CPU": 1.0} for _ in range(tp)]
    bundles[0]["CPU"] += cpus  # the actor itself lives in bundle 0
    return ActorPlan(options={"num_cpus": cpus, "num_gpus": 0}, on_gpu=True, gpus_per_replica=tp,
                     bundles=bundles, strategy=strategy, **common)


def embedder_plan(config: Config, shape: ClusterShape) -> ActorPlan:
    emb, ray_cfg = config.embedder, config.ray
    common = {"kind": "embedder", "replicas": ray_cfg.embedder_replicas}
    cpus = ray_cfg.embedder_cpus
    if isinstance(emb, OpenAIEmbedderConfig):
        return ActorPlan(options={"num_cpus": cpus, "num_gpus": 0}, **common)
    if isinstance(emb, SentenceTransformersConfig):
        on_gpu = _gpu_wanted(emb.device, shape, "embedder.device") if emb.device != "cpu" else False
        if emb.precision != "float32" and not on_gpu:
            raise ConfigError(f"embedder.precision {emb.precision!r} needs embedder.device 'cuda'")
    else:
        assert isinstance(emb, VLLMEmbedderConfig)
        on_gpu = _gpu_wanted(emb.device, shape, "embedder.device")
        if on_gpu and emb.gpu_memory_utilization > ray_cfg.embedder_gpus:
            raise ConfigError(f"embedder.gpu_memory_utilization {emb.gpu_memory_utilization} is more than the share "
                              f"of a GPU the embedder is given (ray.embedder_gpus {ray_cfg.embedder_gpus}): vLLM "
                              "would take memory promised to the other actors on that GPU")
    if not on_gpu:
        return ActorPlan(options={"num_cpus": cpus, "num_gpus": 0}, **common)
    gpus = ray_cfg.embedder_gpus
    return ActorPlan(options={"num_cpus": cpus, "num_gpus": gpus}, on_gpu=True, gpus_per_replica=gpus, **common)


def llm_in_extractor(config: Config) -> bool:
    """Whether LLM calls go through extractor actors (``ray.llm_calls``), or from the shards straight
    to an HTTP endpoint. An in-process engine can only live in an extractor actor."""
    route = config.ray.llm_calls
    if route == "shard" and isinstance(config.llm, VLLMConfig):
        raise ConfigError("ray.llm_calls is 'shard', but llm.provider 'vllm' runs the model in-process: it lives in "
                          "the extractor actors (use 'auto' or 'extractor', or point llm at an HTTP endpoint)")
    return route == "extractor" or (route == "auto" and isinstance(config.llm, VLLMConfig))


def embedder_in_actors(config: Config) -> bool:
    """Whether texts are embedded by embedder actors, or by each shard itself (``ray.embed_in``).
    A shard actor is given no GPU, so a model that wants one must live in the embedder actors."""
    if config.ray.embed_in == "actor":
        return True
    device = getattr(config.embedder, "device", "cpu")
    if device != "cpu":
        raise ConfigError(f"ray.embed_in is 'shard', but embedder.device is {device!r}: shard actors get no GPU, "
                          "so a GPU embedder lives in the embedder actors (ray.embed_in: actor)")
    return False


def plan_model_actors(config: Config, shape: ClusterShape) -> dict[str, ActorPlan]:
    """The model actor kinds this config needs (no extractor when shards call an HTTP LLM), checked
    together against the cluster's GPUs."""
    plans = {"extractor": extractor_plan(config, shape)} if llm_in_extractor(config) else {}
    if embedder_in_actors(config):
        plans["embedder"] = embedder_plan(config, shape)
    demand = {kind: p.gpus_per_replica * p.replicas for kind, p in plans.items()}
    if sum(demand.values()) > shape.total_gpus + 1e-9:
        detail = ", ".join(f"{kind} {plans[kind].replicas} x {plans[kind].gpus_per_replica:g}"
                           for kind in plans if demand[kind])
        raise ConfigError(f"the model actors need {sum(demand.values()):g} GPUs ({detail}) but the Ray cluster has "
                          f"{shape.total_gpus:g}: Ray would leave the rest pending and their calls would wait; "
                          "lower ray.extractor_replicas / ray.embedder_replicas or add GPU nodes")
    return plans
