"""An embedding model on vLLM's pooling runner, in-process: the GPU path that batches like the LLM does.

vLLM reads the model folder's sentence-transformers files (``modules.json``, the pooling
config), so all-MiniLM-L6-v2 gets mean pooling and normalization, the same as the ONNX and
torch embedders: on the CPU build here the vectors matched the ONNX embedder's (cosine 1.0).
Every text is one vLLM request; vLLM batches concurrent requests itself, so one ``embed`` call
fans its texts out at once. Texts longer than ``max_model_len`` tokens are truncated, as
sentence-transformers truncates them (vLLM would otherwise reject them).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import structlog

from runtime.config import VLLMEmbedderConfig
from runtime.embedders.sentence import resolve_model_path
from runtime.errors import BackendUnavailable
from runtime.llms.vllm_engine import _is_cpu_build, prepare_cpu_environment, shutdown_engine, start_engine

log = structlog.get_logger("memstream.embedder.vllm")


class VLLMPoolingEmbedder:
    def __init__(self, config: VLLMEmbedderConfig):
        self.config = config
        self.model_path = resolve_model_path(config.model)
        self.dims: int = int(json.loads((Path(self.model_path) / "config.json").read_text())["hidden_size"])
        self._engine: Any = None
        self._lock = anyio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._engine is not None:
                return
            from vllm.engine.arg_utils import AsyncEngineArgs

            cfg = self.config
            cpu = _is_cpu_build()
            if cpu:
                prepare_cpu_environment()
            args = AsyncEngineArgs(
                model=self.model_path, runner="pooling", dtype=cfg.dtype, enforce_eager=cfg.enforce_eager,
                max_model_len=cfg.max_model_len, max_num_seqs=cfg.max_num_seqs, seed=0,
                **({"kv_cache_memory_bytes": cfg.kv_cache_mb * 2**20} if cpu else
                   {"gpu_memory_utilization": cfg.gpu_memory_utilization}),
            )
            log.info("vllm_embedder_starting", model=self.model_path, cpu=cpu)
            self._engine = await start_engine(args, "embedder")

    async def _one(self, text: str) -> list[float]:
        from vllm.pooling_params import PoolingParams

        final = None
        request_id = f"embed-{uuid.uuid4().hex}"
        async for output in self._engine.encode(
                text, PoolingParams(task="embed"), request_id,
                tokenization_kwargs={"truncation": True, "max_length": self.config.max_model_len}):
            final = output
        if final is None:
            raise BackendUnavailable("vLLM returned no embedding", backend="embedder")
        return [float(x) for x in final.outputs.data.tolist()]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if self._engine is None:
            await self.start()
        vectors: list[list[float]] = [[] for _ in texts]

        async def one(i: int) -> None:
            vectors[i] = await self._one(texts[i])

        try:
            with anyio.fail_after(self.config.timeout_s):
                async with anyio.create_task_group() as tg:
                    for i in range(len(texts)):
                        tg.start_soon(one, i)
        except TimeoutError:
            raise BackendUnavailable(f"vLLM embedder did not answer within {self.config.timeout_s}s",
                                     backend="embedder") from None
        except BackendUnavailable:
            raise
        except Exception as exc:  # vLLM's engine errors, or a group of them
            raise BackendUnavailable(f"vLLM embedder failed: {exc}", backend="embedder") from exc
        return vectors

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await shutdown_engine(engine)
