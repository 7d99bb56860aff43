"""The resource policy: config + cluster shape → Ray actor options, and the refusals (no Ray here)."""

import pytest

from actors.resources import ClusterShape, embedder_plan, extractor_plan, llm_in_extractor, plan_model_actors
from runtime.config import load_config
from runtime.errors import ConfigError

CPU_ONLY = ClusterShape((0.0, 0.0))
ONE_NODE_4GPU = ClusterShape((4.0,))
TWO_NODES_2GPU = ClusterShape((0.0, 2.0, 2.0))


def cfg(**overrides):
    """The local preset, with an embedder actor unless told otherwise (local.yaml embeds in the
    shards; the plans of the model actors are what this module checks)."""
    overrides["ray"] = {"embed_in": "actor", **overrides.get("ray", {})}
    return load_config("local", environ={}, overrides=overrides)


def test_cpu_build_asks_for_no_gpu():
    plans = plan_model_actors(cfg(), CPU_ONLY)
    assert plans["extractor"].options == {"num_cpus": 0.0, "num_gpus": 0}
    assert not plans["extractor"].on_gpu and not plans["embedder"].on_gpu


def test_tensor_parallel_on_the_cpu_build_is_refused_with_the_field_named():
    with pytest.raises(ConfigError, match=r"llm.tensor_parallel_size is 2.*CPU build"):
        extractor_plan(cfg(llm={"tensor_parallel_size": 2}), CPU_ONLY)
    with pytest.raises(ConfigError, match="llm.device is 'cuda' but the Ray cluster has no GPUs"):
        extractor_plan(cfg(llm={"device": "cuda"}), CPU_ONLY)


def test_gpu_extractor_asks_for_as_many_gpus_as_tensor_parallel_ranks():
    plan = extractor_plan(cfg(llm={"tensor_parallel_size": 2}, ray={"extractor_cpus": 2}), ONE_NODE_4GPU)
    assert plan.options == {"num_cpus": 2.0, "num_gpus": 2} and plan.on_gpu and plan.bundles is None
    assert extractor_plan(cfg(), ONE_NODE_4GPU).options["num_gpus"] == 1  # device auto: GPUs when present
    assert extractor_plan(cfg(llm={"device": "cpu"}), ONE_NODE_4GPU).options["num_gpus"] == 0


def test_mp_executor_needs_the_gpus_on_one_node():
    with pytest.raises(ConfigError, match="needs 4 GPUs on one node; the largest node of the Ray cluster has 2"):
        extractor_plan(cfg(llm={"tensor_parallel_size": 4}), TWO_NODES_2GPU)


def test_ray_executor_gets_one_gpu_bundles_and_the_actor_sits_in_bundle_zero():
    overrides = {"llm": {"tensor_parallel_size": 4, "distributed_executor_backend": "ray"},
                 "ray": {"extractor_placement": "PACK", "extractor_cpus": 1}}
    plan = extractor_plan(cfg(**overrides), TWO_NODES_2GPU)
    assert plan.options["num_gpus"] == 0 and plan.gpus_per_replica == 4 and plan.strategy == "PACK"
    assert plan.bundles == [{"GPU": 1.0, "CPU": 2.0}] + [{"GPU": 1.0, "CPU": 1.0}] * 3
    overrides["ray"]["extractor_placement"] = "STRICT_PACK"
    with pytest.raises(ConfigError, match="STRICT_PACK"):
        extractor_plan(cfg(**overrides), TWO_NODES_2GPU)


def test_replicas_beyond_the_cluster_gpus_are_refused_before_anything_starts():
    config = cfg(llm={"tensor_parallel_size": 2}, embedder={"provider": "sentence_transformers", "backend": "torch",
                                                            "device": "cuda"},
                 ray={"extractor_replicas": 2, "embedder_gpus": 0.5})
    plans = plan_model_actors(config, ClusterShape((4.0, 1.0)))
    assert plans["extractor"].replicas == 2 and plans["embedder"].options["num_gpus"] == 0.5
    with pytest.raises(ConfigError, match=r"need 4.5 GPUs \(extractor 2 x 2, embedder 1 x 0.5\).*has 4"):
        plan_model_actors(config, ONE_NODE_4GPU)


def test_an_openai_llm_needs_no_accelerator_wherever_it_runs():
    plan = extractor_plan(cfg(llm={"provider": "openai"}, ray={"extractor_replicas": 3}), ONE_NODE_4GPU)
    assert plan.options["num_gpus"] == 0 and plan.replicas == 3


def test_embedder_choices_and_refusals():
    assert embedder_plan(cfg(), ONE_NODE_4GPU).options["num_gpus"] == 0  # onnx on CPU stays on CPU
    with pytest.raises(ConfigError, match="precision 'float16' needs embedder.device 'cuda'"):
        embedder_plan(cfg(embedder={"precision": "float16"}), ONE_NODE_4GPU)
    assert embedder_plan(cfg(embedder={"device": "cuda"}), ONE_NODE_4GPU).options["num_gpus"] == 1.0
    vllm = cfg(embedder={"provider": "vllm", "gpu_memory_utilization": 0.3}, ray={"embedder_gpus": 0.25})
    with pytest.raises(ConfigError, match="gpu_memory_utilization 0.3 is more than the share"):
        embedder_plan(vllm, ONE_NODE_4GPU)
    assert embedder_plan(vllm, CPU_ONLY).options["num_gpus"] == 0  # vLLM CPU build


def test_the_cluster_preset_plans_on_a_gpu_cluster():
    config = load_config("cluster", environ={})
    plans = plan_model_actors(config, ClusterShape((0.0, 8.0, 8.0)))
    assert plans["extractor"].on_gpu and plans["embedder"].on_gpu
    assert plans["extractor"].replicas * plans["extractor"].gpus_per_replica <= 16


def test_llm_calls_go_through_extractors_only_for_in_process_engines():
    assert llm_in_extractor(cfg())  # vLLM in-process: it lives in the extractor actors
    http = {"provider": "openai", "base_url": "http://llm:8000/v1"}
    assert not llm_in_extractor(cfg(llm=http))  # an HTTP endpoint: each shard calls it
    assert "extractor" not in plan_model_actors(cfg(llm=http), ONE_NODE_4GPU)
    assert llm_in_extractor(cfg(llm=http, ray={"llm_calls": "extractor"}))
    assert list(plan_model_actors(cfg(llm=http, ray={"llm_calls": "extractor"}), CPU_ONLY)) == ["extractor",
                                                                                                   "embedder"]
    with pytest.raises(ConfigError, match="llm_calls is 'shard', but llm.provider 'vllm' runs the model in-process"):
        llm_in_extractor(cfg(ray={"llm_calls": "shard"}))


def test_shards_that_embed_themselves_plan_no_embedder_actor_and_refuse_a_gpu_model():
    in_shard = {"embed_in": "shard"}
    assert "embedder" not in plan_model_actors(cfg(ray=in_shard), ONE_NODE_4GPU)
    assert "embedder" in plan_model_actors(cfg(ray={"embed_in": "actor"}), ONE_NODE_4GPU)
    with pytest.raises(ConfigError, match="embed_in is 'shard', but embedder.device is 'cuda'"):
        plan_model_actors(cfg(ray=in_shard, embedder={"device": "cuda"}), ONE_NODE_4GPU)
