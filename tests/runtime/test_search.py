"""Search modes through the engine: dense, sparse (BM25) and hybrid, the configured default, and a
store from before sparse vectors."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from runtime.config import load_config
from runtime.engine import AsyncMemory
from runtime.errors import InvalidRequest
from runtime.sync import Memory
from tests.runtime.test_backfill import dense_only_shard

FACTS = ["Caroline went to the LGBTQ support group on 7 May", "Melanie painted a sunrise over the lake",
         "Caroline is researching adoption agencies", "Melanie ran a charity race for mental health"]


async def seed(memory: AsyncMemory) -> None:
    for fact in FACTS:
        await memory.add(fact, user_id="locomo", infer=False)
    await memory.add("Caroline's support group meets weekly", user_id="someone-else", infer=False)


async def texts(memory: AsyncMemory, query: str, **kwargs) -> list[str]:
    return [r["memory"] for r in (await memory.search(query, user_id="locomo", **kwargs))["results"]]


async def test_each_mode_ranks_within_the_scope(memory: AsyncMemory):
    await seed(memory)
    for mode in ("dense", "sparse", "hybrid"):
        found = await texts(memory, "When did Caroline go to the support group?", mode=mode, limit=2)
        assert found[0] == FACTS[0], mode
    sparse = await texts(memory, "adoption", mode="sparse")
    assert sparse == [FACTS[2]]  # only memories that share a (stemmed) word
    assert len(await texts(memory, "adoption", mode="hybrid")) == len(FACTS)  # the dense leg brings the rest
    with pytest.raises(InvalidRequest, match="mode must be one of"):
        await memory.search("x", user_id="locomo", mode="keyword")


async def test_the_configured_mode_is_the_default(config, embedder, llm):
    for mode, expected in (("sparse", [FACTS[2]]), ("hybrid", None)):
        tuned = load_config("test", overrides={"data_dir": config.data_dir, "retrieval": {"mode": mode}}, environ={})
        async with AsyncMemory(tuned, llm=llm, embedder=embedder) as memory:
            if mode == "sparse":
                await seed(memory)
            found = await texts(memory, "adoption")
            assert found == expected if expected else len(found) == len(FACTS)


async def test_a_store_without_sparse_vectors_answers_dense_until_backfilled(config, embedder, llm):
    dense_only_shard(config, embedder.dims)
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        await seed(memory)
        with capture_logs() as logs:
            assert (await texts(memory, "adoption"))[0] == FACTS[2]  # hybrid configured: dense answers
            await texts(memory, "adoption")
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["search_dense_only"]  # once
        with pytest.raises(InvalidRequest, match="backfill-sparse"):
            await memory.search("adoption", user_id="locomo", mode="hybrid")


def test_the_blocking_memory_takes_the_mode_too(config, embedder, llm):
    with Memory(config, llm=llm, embedder=embedder) as memory:
        memory.add(FACTS[2], user_id="locomo", infer=False)
        found = memory.search("adoption agencies", user_id="locomo", mode="sparse")
        assert [r["memory"] for r in found["results"]] == [FACTS[2]]
