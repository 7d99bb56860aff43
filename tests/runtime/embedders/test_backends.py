"""The ONNX and torch backends of all-MiniLM-L6-v2 give the same vectors."""

import numpy as np

from runtime.config import SentenceTransformersConfig
from runtime.embedders import make_embedder
from runtime.embedders.onnx import OnnxEmbedder
from runtime.embedders.sentence import SentenceTransformerEmbedder

TEXTS = ["I like tea", "The capital of France is Paris", "Dogs are loyal animals and good friends " * 3, "ok"]


async def test_onnx_and_torch_agree(embedder):
    torch_embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", threads=1)
    a, b = np.array(await embedder.embed(TEXTS)), np.array(await torch_embedder.embed(TEXTS))
    assert a.shape == b.shape == (4, 384)
    assert (a * b).sum(axis=1).min() > 0.9999
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_factory_picks_onnx_on_cpu_and_torch_when_asked():
    assert isinstance(make_embedder(SentenceTransformersConfig()), OnnxEmbedder)
    assert isinstance(make_embedder(SentenceTransformersConfig(backend="torch")), SentenceTransformerEmbedder)
