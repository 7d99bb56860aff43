"""all-MiniLM-L6-v2 on vLLM's pooling runner (the CPU build here): the same vectors as the ONNX
embedder, long texts truncated rather than refused. One engine for the module (~25 s). Slow; CI runs it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from runtime.config import VLLMEmbedderConfig, load_config
from runtime.embedders import make_embedder
from runtime.embedders.vllm_pooling import VLLMPoolingEmbedder

pytestmark = pytest.mark.slow

TEXTS = ["I like tea", "The capital of France is Paris", "Dogs are loyal animals and good friends " * 3, "ok",
         "Ich wohne in Zürich ✓"]


@pytest.fixture(scope="module")
async def pooling():
    embedder = make_embedder(load_config(None, environ={}, overrides={"embedder": {"provider": "vllm"}}).embedder)
    assert isinstance(embedder, VLLMPoolingEmbedder) and embedder.dims == 384
    await embedder.start()
    yield embedder
    await embedder.close()


async def test_vectors_match_the_onnx_embedder(pooling, embedder):
    a, b = np.array(await pooling.embed(TEXTS)), np.array(await embedder.embed(TEXTS))
    assert a.shape == b.shape == (len(TEXTS), 384)
    assert (a * b).sum(axis=1).min() > 0.99
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)


async def test_long_texts_are_truncated_like_sentence_transformers(pooling, embedder):
    long = "memory " * 1000  # ~1000 tokens, over max_model_len
    [v] = await pooling.embed([long])
    [ref] = await embedder.embed([long])
    assert float(np.dot(v, ref)) > 0.99


async def test_concurrent_batch_throughput(pooling):
    texts = [f"fact number {i}: the user likes topic {i % 17}" for i in range(128)]
    started = time.perf_counter()
    vectors = await pooling.embed(texts)
    rate = len(texts) / (time.perf_counter() - started)
    print(f"\nvLLM pooling embedder (CPU build): {rate:.0f} texts/s in one call of {len(texts)}")
    assert len(vectors) == len(texts) and len(set(map(tuple, vectors))) > 100


def test_config_selects_the_pooling_embedder():
    assert isinstance(make_embedder(VLLMEmbedderConfig()), VLLMPoolingEmbedder)
