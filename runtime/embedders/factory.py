"""Config → embedder adapter."""

from __future__ import annotations

from runtime.config import EmbedderConfig, OpenAIEmbedderConfig, SentenceTransformersConfig, VLLMEmbedderConfig
from runtime.embedders.port import Embedder


def make_embedder(section: EmbedderConfig) -> Embedder:
    if isinstance(section, SentenceTransformersConfig) and section.backend == "onnx" and section.device == "cpu":
        from runtime.embedders.onnx import OnnxEmbedder

        return OnnxEmbedder(section.model, threads=section.threads, batch_size=section.batch_size,
                            quantize=section.quantize)
    if isinstance(section, SentenceTransformersConfig):
        from runtime.embedders.sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(section.model, device=section.device, threads=section.threads,
                                           batch_size=section.batch_size, precision=section.precision)
    if isinstance(section, VLLMEmbedderConfig):
        from runtime.embedders.vllm_pooling import VLLMPoolingEmbedder

        return VLLMPoolingEmbedder(section)  # the engine starts on first use (or ``await start()``)
    assert isinstance(section, OpenAIEmbedderConfig)
    from runtime.embedders.openai import OpenAIEmbedder

    return OpenAIEmbedder(base_url=section.base_url, model=section.model, dims=section.dims,
                          api_key_env=section.api_key_env, timeout_s=section.timeout_s)
