"""Memories stored before hybrid search get their sparse vectors from the journal, resumably."""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams

from runtime.backfill import backfill_sparse, pending_owners
from runtime.config import Config
from runtime.engine import AsyncMemory
from runtime.model import Scope
from scripts.backfill_sparse import locations
from tests.conftest import make_edge, make_sqlite


def dense_only_shard(config: Config, dims: int) -> None:
    """The vector folder as a release before sparse vectors left it."""
    path = config.data_path("vectors")
    path.mkdir(parents=True)
    EdgeShard.create(str(path), EdgeConfig(vectors=EdgeVectorParams(size=dims, distance=Distance.Cosine))).close()


async def seed_before_sparse(config: Config, embedder, llm) -> None:
    dense_only_shard(config, embedder.dims)
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        assert not memory.vectors.has_sparse
        await memory.add("Alice keeps bees in the garden", user_id="alice", infer=False)
        kept = await memory.add("Alice sings in a choir", user_id="alice", infer=False)
        gone = await memory.add("Alice owns a kayak", user_id="alice", infer=False)
        await memory.add("Bob restores old clocks", user_id="bob", infer=False)
        await memory.update(kept["results"][0]["id"], "Alice sings in a jazz choir")
        await memory.delete(gone["results"][0]["id"])


async def sparse_texts(store, user: str, query: str) -> list[str]:
    hits = await store.search(None, text=query, tenant="default", scope=Scope(user_id=user), filters=None,
                              limit=10, mode="sparse")
    return [h.record.text for h in hits]


async def test_backfill_writes_the_live_memories_and_resumes_where_it_stopped(config, embedder, llm):
    await seed_before_sparse(config, embedder, llm)
    journal, store = make_sqlite(config), make_edge(config)
    await journal.open()
    await store.open(embedder.dims)
    try:
        stopped_after: list[int] = []

        def interrupt(memories: int) -> None:
            stopped_after.append(memories)
            raise KeyboardInterrupt  # killed after the first owner was written

        with pytest.raises(KeyboardInterrupt):
            await backfill_sparse(journal, store, progress=interrupt)
        assert store.has_sparse and stopped_after == [2]  # alice: bees and the jazz choir
        assert [owner for _, owner, _ in await pending_owners(journal)] == ["user:bob"]

        report = await backfill_sparse(journal, store)
        assert (report.slot_added, report.owners, report.memories, report.written) == (False, 1, 1, 1)
        assert sorted(await sparse_texts(store, "alice", "bees choir kayak")) == [
            "Alice keeps bees in the garden", "Alice sings in a jazz choir"]  # the update's text; no kayak
        assert await sparse_texts(store, "bob", "clocks") == ["Bob restores old clocks"]

        again = await backfill_sparse(journal, store)
        assert (again.owners, again.written) == (0, 0)  # nothing left to do
    finally:
        await store.close()
        await journal.close()


async def test_memories_written_after_the_backfill_are_searchable_in_every_mode(config, embedder, llm):
    await seed_before_sparse(config, embedder, llm)
    journal, store = make_sqlite(config), make_edge(config)
    await journal.open()
    await store.open(embedder.dims)
    await backfill_sparse(journal, store)
    await store.close()
    await journal.close()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        assert memory.vectors.has_sparse
        await memory.add("Alice bought a telescope", user_id="alice", infer=False)
        assert await sparse_texts(memory.vectors, "alice", "telescope") == ["Alice bought a telescope"]
        assert await sparse_texts(memory.vectors, "alice", "bees") == ["Alice keeps bees in the garden"]


def test_locations_are_the_data_folder_and_its_shard_folders(config):
    root = Path(config.data_dir)
    for folder in ("shard-1", "shard-0", "shard-10", "other"):
        (root / folder).mkdir(parents=True)
        (root / folder / "journal.sqlite3").touch()
    (root / "shard-2").mkdir()  # no journal: nothing stored there
    found = [c.data_dir for c in locations(config)]
    assert found == [str(root / "shard-0"), str(root / "shard-1"), str(root / "shard-10")]
