"""A process killed between the journal append and the vector-store apply loses nothing:
the next start re-applies what the store missed."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import anyio
import msgspec

from runtime.config import Config
from runtime.engine import AsyncMemory
from runtime.errors import BackendUnavailable
from runtime.journal.sqlite import SQLiteJournal

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import anyio, sys
    from runtime.config import load_config
    from runtime.engine import AsyncMemory
    from runtime.journal.sqlite import SQLiteJournal
    from tests.doubles import KillAfterAppend, ScriptedLLM

    async def main():
        config = load_config("test", overrides={"data_dir": sys.argv[1]}, environ={})
        appends = iter(range(100))
        journal = KillAfterAppend(SQLiteJournal(config.data_path("journal.sqlite3")),
                                  when=lambda: next(appends) == 1)
        async with AsyncMemory(config, llm=ScriptedLLM(), journal=journal) as memory:
            await memory.add("committed before the crash", infer=False, user_id="alice")
            await memory.add("lost from the index by the crash", infer=False, user_id="alice", request_id="r1")
            print("not killed", flush=True)

    anyio.run(main)
""")


async def test_crash_between_journal_and_store_is_repaired_on_restart(config: Config, embedder, llm):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # first add commits normally, the second is killed right after its journal commit
    with anyio.fail_after(300):
        child = await anyio.run_process([sys.executable, "-c", CHILD, str(config.data_dir)], env=env, cwd=ROOT,
                                        check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        texts = {m["memory"] for m in (await memory.get_all(user_id="alice"))["results"]}
        assert texts == {"committed before the crash", "lost from the index by the crash"}
        hits = (await memory.search("index crash", user_id="alice"))["results"]
        assert hits[0]["memory"] == "lost from the index by the crash"
        assert [e["seq"] for e in await memory.history(user_id="alice")] == [1, 2]
        # the client retries the killed request: same result, nothing appended twice
        again = await memory.add("lost from the index by the crash", infer=False, user_id="alice", request_id="r1")
        assert again["results"][0]["memory"] == "lost from the index by the crash"
        assert await memory.head(user_id="alice") == 2


UNFLUSHED_CHILD = textwrap.dedent("""
    import anyio, os, sys
    from runtime.config import load_config
    from runtime.engine import AsyncMemory
    from tests.doubles import ScriptedLLM

    async def main():
        config = load_config("test", overrides={"data_dir": sys.argv[1],
                                                "vector_store": {"flush_every": 4}}, environ={})
        memory = await AsyncMemory(config, llm=ScriptedLLM()).open()
        for i in range(6):  # 4 entries reach a flush, 2 stay in the store unflushed
            await memory.add(f"hobby number {i} is kayaking", infer=False, user_id="bob")
        os._exit(0)  # no close, no flush: as a kill -9 would

    anyio.run(main)
""")


async def test_without_edges_wal_what_was_not_flushed_is_re_applied_from_the_journal(config: Config, embedder, llm):
    """Edge runs without its WAL (the journal is one): its watermark follows its flushes, so a crash
    between flushes loses nothing the journal holds."""
    assert config.vector_store.wal is False and config.vector_store.flush_every == 1000  # the defaults
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with anyio.fail_after(300):
        child = await anyio.run_process([sys.executable, "-c", UNFLUSHED_CHILD, str(config.data_dir)], env=env,
                                        cwd=ROOT, check=False)
    assert child.returncode == 0, child.stderr.decode()[-2000:]
    journal = SQLiteJournal(config.data_path("journal.sqlite3"))
    await journal.open()
    assert await journal.watermark("vectors", "default", "user:bob") == 4  # the flush's, not the head's
    await journal.close()
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        texts = sorted(m["memory"] for m in (await memory.get_all(user_id="bob"))["results"])
        assert texts == [f"hobby number {i} is kayaking" for i in range(6)]  # the open re-applied 5 and 6
        assert await memory._ctx.journal.watermark("vectors", "default", "user:bob") == 6
        await memory.add("hobby number 6 is kayaking", infer=False, user_id="bob")
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:  # a clean close flushed it
        assert await memory.recover() == 0 and await memory.head(user_id="bob") == 7


async def test_the_vector_watermark_follows_flushes_and_a_failed_flush_fails_no_add(config: Config, embedder, llm):
    config = msgspec.structs.replace(config, vector_store=msgspec.structs.replace(config.vector_store, flush_every=3))
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:
        journal, vectors = memory._ctx.journal, memory._ctx.vectors

        async def watermark() -> int:
            return await journal.watermark("vectors", "default", "user:carol")

        for i in range(4):
            await memory.add(f"carol fact {i}", infer=False, user_id="carol")
        assert await watermark() == 3  # the third entry flushed; the fourth waits for the next flush
        flush = vectors.flush

        async def failing_flush() -> None:
            raise BackendUnavailable("Qdrant Edge flush failed: disk full", backend="vector_store")

        vectors.flush = failing_flush
        for i in range(4, 6):
            await memory.add(f"carol fact {i}", infer=False, user_id="carol")  # committed and searchable
        assert await watermark() == 3
        assert len((await memory.search("carol fact", user_id="carol", limit=10))["results"]) == 6
        vectors.flush = flush
    async with AsyncMemory(config, llm=llm, embedder=embedder) as memory:  # close flushed and recorded all
        assert await memory.recover() == 0
        assert await memory._ctx.journal.watermark("vectors", "default", "user:carol") == 6
