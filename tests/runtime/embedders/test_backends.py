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


async def test_int8_vectors_stay_close_to_float32_and_rank_alike(embedder):
    """The default CPU embedder is int8 (MatMul weights): vectors close to float32's, the same answer found."""
    quantized = OnnxEmbedder("all-MiniLM-L6-v2", threads=1, quantize="int8")
    a, b = np.array(await embedder.embed(TEXTS)), np.array(await quantized.embed(TEXTS))
    cosines = (a * b).sum(axis=1)
    assert cosines[:3].min() > 0.98 and cosines[3] > 0.95  # a one-word text ("ok") moves the most
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    query = ["Which city is the capital of France?"]
    qa, qb = np.array(await embedder.embed(query)), np.array(await quantized.embed(query))
    assert int(np.argmax(a @ qa.T)) == int(np.argmax(b @ qb.T)) == 1  # the capital of France, for both


def test_factory_picks_onnx_on_cpu_and_torch_when_asked():
    assert isinstance(make_embedder(SentenceTransformersConfig()), OnnxEmbedder)
    assert isinstance(make_embedder(SentenceTransformersConfig(backend="torch")), SentenceTransformerEmbedder)


def test_the_word_table_is_mapped_from_disk_not_loaded_into_each_process():
    embedder = OnnxEmbedder("all-MiniLM-L6-v2", threads=1, quantize="int8")
    assert isinstance(embedder._words, np.memmap) and embedder._words.shape == (30522, 384)
