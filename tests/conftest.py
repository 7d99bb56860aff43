"""Shared fixtures: one real MiniLM embedder per session, fresh stores per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from runtime.config import Config, load_config  # noqa: E402
from runtime.engine import AsyncMemory  # noqa: E402
from runtime.journal.sqlite import SQLiteJournal  # noqa: E402
from runtime.vectors.edge import EdgeVectorStore  # noqa: E402
from tests.doubles import ScriptedLLM  # noqa: E402

POSTGRES_DSN = os.environ.get("MEMSTREAM_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def embedder():
    from runtime.embedders.onnx import OnnxEmbedder

    return OnnxEmbedder("all-MiniLM-L6-v2", threads=1)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config("test", overrides={"data_dir": str(tmp_path / "data")}, environ={})


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
async def memory(config: Config, embedder, llm: ScriptedLLM) -> AsyncIterator[AsyncMemory]:
    async with AsyncMemory(config, llm=llm, embedder=embedder) as m:
        yield m


def make_edge(config: Config) -> EdgeVectorStore:
    return EdgeVectorStore(config.data_path("vectors"))


def make_sqlite(config: Config) -> SQLiteJournal:
    return SQLiteJournal(config.data_path("journal.sqlite3"))


# ---- the actor runtime: one Ray instance per session, shared by tests/actors and tests/reliability ----
# Imports are inside the fixtures so that test runs that never ask for Ray do not import it.


@pytest.fixture(scope="session")
async def llm_server():
    """The stand-in OpenAI-compatible LLM server (scripts/fake_llm_server.py), 20 ms per call."""
    from scripts.fake_llm_server import make_app
    from tests.doubles import http_server

    async with http_server(make_app(0.02)) as url:
        yield url


@pytest.fixture(scope="session")
async def cluster(tmp_path_factory, llm_server):
    """One Ray instance and one memstream actor runtime for the whole session (Ray takes seconds to
    start here); each test uses owners of its own. Other runtimes (own namespace) may be started
    beside it on the same Ray instance by fixtures that depend on this one."""
    from actors.client import ClusterMemory

    config = load_config("test", environ={}, overrides={
        "data_dir": str(tmp_path_factory.mktemp("cluster")),
        "llm": {"provider": "openai", "base_url": llm_server},
        "ray": {"shards": 2, "restart_wait_s": 90},
        "memory": {"mailbox_capacity": 64},
    })
    memory = await ClusterMemory(config).open()
    yield memory
    await memory.cluster.stop()


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: without it they are skipped, saying so (scripts/gpu_check.py runs them)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False on this machine); "
                                       "run `memstream gpu-check` on a GPU machine")
        for item in gpu_items:
            item.add_marker(skip)
