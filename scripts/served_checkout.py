"""Before / after benchmarks of ``memstream serve``: the server started from a given checkout (the
commit before a change, or this one) with extra settings, measured by the caller's steps, and each
run kept under its ``--label`` beside the other labels (``scripts.machine.store_labelled_run``).
Shared by ``memstream bench-memory`` and ``memstream bench-search``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from gateway.auth import mint_token
from scripts.bench_gateway import SECRET, Server
from scripts.machine import describe, store_labelled_run

REPO = Path(__file__).resolve().parents[1]


class CheckoutServer(Server):
    """``memstream serve`` from a given checkout (its code first on the path), with extra settings."""

    def __init__(self, data_dir: str, llm_url: str | None, env: dict[str, str], checkout: str | None):
        settings = {"MEMSTREAM_TOKEN_SECRET": SECRET, "MEMSTREAM_LOG__LEVEL": "warning",
                    "MEMSTREAM_GATEWAY__RATE_PER_S": "100000", "MEMSTREAM_GATEWAY__RATE_BURST": "100000"}
        if llm_url is not None:
            settings.update({"MEMSTREAM_LLM__PROVIDER": "openai", "MEMSTREAM_LLM__BASE_URL": llm_url})
        full_env = {**os.environ, **settings, **env}
        cwd = checkout or str(REPO)
        full_env["PYTHONPATH"] = cwd  # Ray's workers import the actors from the driver's path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "serve", "--runtime", "ray", "--port", "0", "--data-dir", data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=cwd)
        self.url = ""


def commit_of(checkout: str | None) -> str:
    where = checkout or str(REPO)
    try:
        head = subprocess.run(["git", "-C", where, "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


Steps = Callable[[CheckoutServer, str, str], Awaitable[dict[str, Any]]]


async def measure_served(args: argparse.Namespace, llm_url: str | None, name: str, steps: Steps) -> dict[str, Any]:
    """Start the server (``args.checkout``, ``args.env``), run ``steps(server, url, token)`` once it
    is ready, stop it whatever happens; the run's machine, settings and commit come with the result."""
    env = dict(item.split("=", 1) for item in args.env)
    server = CheckoutServer(tempfile.mkdtemp(prefix=f"memstream-bench-{name}-"), llm_url, env, args.checkout)
    token = mint_token(SECRET, tenant="default", owners=["*"], rights=["read", "write"], ttl_s=86400)
    result: dict[str, Any] = {"machine": describe(), "env": env, "checkout": commit_of(args.checkout)}
    try:
        url = await anyio.to_thread.run_sync(server.wait_ready)
        result.update(await steps(server, url, token))
    finally:
        server.stop()
    return result


def labelled_parser(prog: str, description: str | None, out: str) -> argparse.ArgumentParser:
    """The options every before / after benchmark has; the caller adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="current")
    parser.add_argument("--checkout", default=None, help="run `memstream serve` from this checkout")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--out", default=out)
    return parser


def run_labelled(parser: argparse.ArgumentParser, argv: list[str] | None, benchmark: str,
                 run: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]],
                 headline: Callable[[dict], dict]) -> None:
    args = parser.parse_args(argv)
    results = store_labelled_run(args.out, benchmark, args.label, anyio.run(run, args), headline)
    print(json.dumps(results["summary"], indent=2))
