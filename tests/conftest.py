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
