"""A process killed between the journal append and the vector-store apply loses nothing:
the next start re-applies what the store missed."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import anyio

from runtime.config import Config
from runtime.engine import AsyncMemory

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
