"""``memstream gpu-check``: on a GPU machine, run the ``gpu``-marked tests and a throughput benchmark.

Writes ``bench/results/gpu_check.json``: the pytest outcome of ``-m gpu``, then extraction turns/s
and output tokens/s of the configured vLLM model at a few concurrencies (with vLLM's
prefix-cache hit rate), and embedder texts/s on CUDA. Without a CUDA GPU it says so and exits 3
without writing anything (the CPU path is covered by ``make test``).

    memstream gpu-check [--model /models/Llama-3.1-8B-Instruct] [--turns 256] [--skip-tests]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from runtime.config import PROJECT_ROOT, SentenceTransformersConfig, VLLMConfig
from runtime.prompts import facts_schema, render_extraction

NO_GPU_EXIT = 3
DEFAULT_OUT = PROJECT_ROOT / "bench" / "results" / "gpu_check.json"


def gpu_inventory() -> list[dict[str, Any]]:
    """The CUDA devices torch sees (empty without a GPU, or with the CPU build of torch)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [{"index": i, "name": torch.cuda.get_device_name(i),
             "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
            for i in range(torch.cuda.device_count())]


def no_gpu_message() -> str:
    try:
        import torch

        build = f"torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no (CPU build)'}"
    except ImportError:
        build = "torch is not installed"
    driver = "nvidia-smi found" if shutil.which("nvidia-smi") else "no nvidia-smi on PATH"
    return (f"memstream gpu-check: no CUDA GPU is present on this machine ({build}; {driver}). "
            "Nothing was run. On a GPU machine install the GPU extras (pip install -e '.[gpu,dev]') and run "
            "it again; the CPU path is tested by `make test`.")


def run_gpu_tests() -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rA", "-p", "no:cacheprovider"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    return {"exit_code": done.returncode, "summary": lines[-1] if lines else "", "seconds":
            round(time.perf_counter() - started, 1), "report": [line for line in lines if line.startswith(
                ("PASSED", "FAILED", "SKIPPED", "ERROR"))]}


async def bench_llm(model: str, turns: int, concurrencies: list[int], tensor_parallel_size: int) -> dict[str, Any]:
    from runtime.llms.vllm_engine import VLLMEngineLLM

    llm = VLLMEngineLLM(VLLMConfig(model=model, dtype="bfloat16", enforce_eager=False, device="cuda",
                                   tensor_parallel_size=tensor_parallel_size, max_num_seqs=256,
                                   max_model_len=4096, repetition_penalty=1.0, max_tokens=256))
    started = time.perf_counter()
    await llm.start()
    result: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size,
                              "engine_start_s": round(time.perf_counter() - started, 1), "runs": []}
    tokenizer = llm._tokenizer
    try:
        for concurrency in concurrencies:
            result["runs"].append(await _run(llm, tokenizer, turns, concurrency))
    finally:
        await llm.close()
    return result


async def _run(llm: Any, tokenizer: Any, turns: int, concurrency: int) -> dict[str, Any]:
    """``turns`` extraction calls, at most ``concurrency`` in flight; vLLM batches those in flight."""
    limiter = anyio.Semaphore(concurrency)
    out_tokens = 0

    async def turn(i: int) -> None:
        nonlocal out_tokens
        conversation = (f"user: I'm user {i}, I live in city {i % 97}, I work as engineer number {i % 13} "
                        f"and my dog is called Rex{i}")
        async with limiter:
            raw = await llm.complete_json(render_extraction(conversation),
                                          facts_schema(10, 200), name="facts")
        out_tokens += len(tokenizer(raw, add_special_tokens=False)["input_ids"])

    before = llm.prefix_cache_stats()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(turns):
            tg.start_soon(turn, i)
    seconds = time.perf_counter() - started
    after = llm.prefix_cache_stats()
    queries = after["prefix_cache_queries"] - before["prefix_cache_queries"]
    hits = after["prefix_cache_hits"] - before["prefix_cache_hits"]
    return {
        "concurrency": concurrency, "extraction_calls": turns, "seconds": round(seconds, 2),
        "extraction_calls_per_s": round(turns / seconds, 2),
        "output_tokens_per_s": round(out_tokens / seconds, 1),
        # a turn is two LLM calls (extract, then decide) of similar size
        "turns_per_s_estimate": round(turns / seconds / 2, 2),
        "prefix_cache_hit_rate": round(hits / queries, 4) if queries else 0.0,
    }


async def bench_embedder(batch_size: int) -> dict[str, Any]:
    from runtime.embedders import make_embedder

    embedder = make_embedder(SentenceTransformersConfig(backend="torch", device="cuda", precision="float16",
                                                        batch_size=batch_size))
    texts = [f"fact {i}: the user likes topic {i % 101} and lives in city {i % 37}" for i in range(8192)]
    await embedder.embed(texts[:batch_size])  # warm-up
    started = time.perf_counter()
    await embedder.embed(texts)
    seconds = time.perf_counter() - started
    return {"backend": "sentence-transformers cuda float16", "batch_size": batch_size, "texts": len(texts),
            "texts_per_s": round(len(texts) / seconds, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memstream gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("MEMSTREAM_GPU_LLM", "smollm2-135m-instruct"),
                        help="a model folder for the throughput run (default: the packaged demo model)")
    parser.add_argument("--turns", type=int, default=256)
    parser.add_argument("--concurrency", default="1,16,64,256", help="comma-separated extraction concurrencies")
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--embedder-batch-size", type=int, default=256)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    gpus = gpu_inventory()
    if not gpus:
        print(no_gpu_message(), file=sys.stderr)
        raise SystemExit(NO_GPU_EXIT)
    report: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "gpus": gpus}
    if not args.skip_tests:
        report["gpu_tests"] = run_gpu_tests()
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    report["llm"] = anyio.run(bench_llm, args.model, args.turns, concurrencies, args.tensor_parallel_size)
    report["embedder"] = anyio.run(bench_embedder, args.embedder_batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    if report.get("gpu_tests", {}).get("exit_code", 0) != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
