"""The mem0ai side of ``memstream bench``: its locked virtual environment under ``.cache/bench/``
(created once, by the set-up step) and one scenario at a time in ``scripts/mem0_driver.py``
inside it, which imports no memstream code: the work goes in as JSON on stdin, the measurements
come back in a JSON file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scripts.compare import ROOT

MEM0_VENV = ROOT / ".cache" / "bench" / "mem0-venv"
MEM0_REQUIREMENTS = ROOT / "scripts" / "mem0_requirements.txt"
MEM0_DRIVER = ROOT / "scripts" / "mem0_driver.py"


def ensure_mem0_venv(venv: Path = MEM0_VENV, requirements: Path = MEM0_REQUIREMENTS) -> Path:
    """Create (once) the locked mem0ai environment; a stamp with the lock's hash makes it idempotent.
    ``--no-deps``: exactly the versions `make lock` resolved (the CPU torch among them, from local disk)."""
    python = venv / "bin" / "python"
    stamp = venv / ".bench-installed"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    print(f"setting up the mem0ai environment in {venv} (once)", file=sys.stderr, flush=True)
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "-r", str(requirements)], check=True)
    stamp.write_text(want + "\n")
    return python


async def run_driver(python: Path, request: dict[str, Any], workdir: Path) -> dict:
    """One scenario in the mem0 venv; its progress bars share our stderr. A driver that fails
    raises RuntimeError, which the benchmark records among its errors and goes on."""
    import anyio

    out = workdir / f"mem0-{request['scenario']}.json"
    request = {**request, "out": str(out), "tmp": str(workdir)}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MEM0_TELEMETRY="False", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", MEM0_DIR=str(workdir / "mem0-home"))
    done = await anyio.run_process([str(python), "-I", str(MEM0_DRIVER)], input=json.dumps(request).encode(),
                                   stdout=sys.stderr, stderr=sys.stderr, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"mem0ai driver ({request['scenario']}) exited with {done.returncode}; see stderr above")
    return json.loads(await anyio.Path(out).read_text())
