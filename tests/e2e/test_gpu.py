"""The GPU half of the production path. Marked ``gpu``: skipped without CUDA (tests/conftest.py);
``memstream gpu-check`` runs them, and a throughput benchmark, on a GPU machine.

The LLM is the packaged SmolLM2 unless MEMSTREAM_GPU_LLM names a model folder (e.g. an 8B model).
"""

from __future__ import annotations

import datetime as dt
import json
import os

import anyio
import numpy as np
import pytest

from runtime.config import SentenceTransformersConfig, VLLMConfig, VLLMEmbedderConfig
from runtime.embedders import make_embedder
from runtime.prompts import facts_schema, render_extraction

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

TEXTS = ["I like tea", "The capital of France is Paris", "Dogs are loyal animals and good friends " * 3, "ok"]


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def llm_config(**overrides) -> VLLMConfig:
    model = os.environ.get("MEMSTREAM_GPU_LLM", "smollm2-135m-instruct")
    return VLLMConfig(model=model, dtype="bfloat16", enforce_eager=False, gpu_memory_utilization=0.5,
                      device="cuda", **overrides)


async def test_sentence_transformers_on_cuda_in_half_precision_matches_onnx(embedder):
    section = SentenceTransformersConfig(backend="torch", device="cuda", precision="float16", batch_size=256)
    gpu = make_embedder(section)
    a, b = np.array(await gpu.embed(TEXTS)), np.array(await embedder.embed(TEXTS))
    assert (a * b).sum(axis=1).min() > 0.999
    vectors = await gpu.embed([f"sentence {i} about the user" for i in range(2048)])
    assert len(vectors) == 2048


async def test_vllm_pooling_embedder_on_cuda_matches_onnx(embedder):
    pooling = make_embedder(VLLMEmbedderConfig(dtype="float16", device="cuda"))
    try:
        a, b = np.array(await pooling.embed(TEXTS)), np.array(await embedder.embed(TEXTS))
        assert (a * b).sum(axis=1).min() > 0.99
    finally:
        await pooling.close()


async def _extract_many(llm, n: int) -> list[str]:
    out: list[str] = []

    async def one(i: int) -> None:
        messages = render_extraction(f"user: my name is user{i} and I like topic {i}")
        out.append(await llm.complete_json(messages, facts_schema(4, 80), name="facts"))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return out


async def test_vllm_engine_on_one_gpu_with_prefix_cache_hits():
    from runtime.llms.vllm_engine import VLLMEngineLLM

    llm = VLLMEngineLLM(llm_config())
    await llm.start()
    try:
        answers = await _extract_many(llm, 32)
        assert all(isinstance(json.loads(a)["facts"], list) for a in answers)
        assert llm.prefix_cache_stats()["prefix_cache_hit_rate"] > 0.5
    finally:
        await llm.close()


@pytest.mark.skipif(gpu_count() < 2, reason="tensor parallelism needs 2 GPUs")
async def test_vllm_engine_with_tensor_parallel_two():
    from runtime.llms.vllm_engine import VLLMEngineLLM

    llm = VLLMEngineLLM(llm_config(tensor_parallel_size=2))
    await llm.start()
    try:
        assert len(await _extract_many(llm, 8)) == 8
    finally:
        await llm.close()


async def test_extractor_actor_gets_its_gpus_from_ray(tmp_path):
    import msgspec
    import ray

    from actors.models import ExtractorActor
    from actors.placement import start_replicas
    from actors.resources import ClusterShape, extractor_plan
    from runtime.config import load_config

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address="local", namespace="gpu-check", include_dashboard=False)
    try:
        config = load_config("local", environ={}, overrides={"llm": msgspec.to_builtins(llm_config())})
        plan = msgspec.structs.replace(extractor_plan(config, ClusterShape.from_ray()), kind="gpu-check-extractor")
        assert plan.on_gpu and plan.options["num_gpus"] == 1
        [handle] = await start_replicas(ExtractorActor, plan, "gpu-check", (msgspec.to_builtins(config.llm),))
        placement = await handle.placement.remote()
        assert len(placement["gpu_ids"]) == 1 and placement["cuda_visible_devices"]
        await handle.warm.remote()
        ray.kill(handle, no_restart=True)
    finally:
        if started_here:
            ray.shutdown()
