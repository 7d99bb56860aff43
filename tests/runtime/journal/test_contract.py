"""One contract, every journal backend: SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import uuid

import anyio
import pytest

from runtime.errors import BackendUnavailable
from runtime.journal.postgres import PostgresJournal
from runtime.journal.sqlite import SQLiteJournal
from runtime.model import EntryDraft, Scope, replay
from tests.conftest import POSTGRES_DSN

SCOPE = Scope(user_id="alice")


def draft(memory_id: str, event: str = "ADD", text: str | None = "x", version: int = 1) -> EntryDraft:
    return EntryDraft(id=str(uuid.uuid4()), memory_id=memory_id, event=event, old_memory=None, new_memory=text,
                      scope=SCOPE, tenant="t1", created_at="2026-01-01T00:00:00+00:00", version=version)


@pytest.fixture(params=["sqlite", "postgres"])
async def journal(request, tmp_path):
    if request.param == "sqlite":
        j = SQLiteJournal(tmp_path / "journal.sqlite3")
        await j.open()
        yield j
        await j.close()
        return
    j = PostgresJournal(POSTGRES_DSN, schema=f"test_{uuid.uuid4().hex[:12]}", timeout_s=5)
    try:
        await j.open()
    except BackendUnavailable as exc:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}")
    yield j
    await j.drop()
    await j.close()


async def test_seq_is_per_owner_gapless_from_one(journal):
    a = await journal.append("t1", "user:alice", [draft("m1"), draft("m2")])
    b = await journal.append("t1", "user:bob", [draft("m3")])
    c = await journal.append("t1", "user:alice", [draft("m4")])
    assert [e.seq for e in a.entries] == [1, 2] and [e.seq for e in c.entries] == [3]
    assert [e.seq for e in b.entries] == [1]
    assert await journal.head("t1", "user:alice") == 3
    assert await journal.head("t2", "user:alice") == 0
    assert await journal.heads("t1") == [("user:alice", 3), ("user:bob", 1)] and await journal.heads("t2") == []
    assert [e.memory_id for e in await journal.read("t1", "user:alice", after_seq=1)] == ["m2", "m4"]
    assert [e.seq for e in await journal.read("t1", "user:alice", after_seq=0, limit=2)] == [1, 2]


async def test_concurrent_appends_stay_gapless(journal):
    async def writer(i: int) -> None:
        for j in range(5):
            await journal.append("t1", "user:alice", [draft(f"m{i}-{j}")])

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(writer, i)
    assert [e.seq for e in await journal.read("t1", "user:alice")] == list(range(1, 21))


async def test_request_id_is_idempotent(journal):
    first = await journal.append("t1", "user:alice", [draft("m1")], request_id="r1", result=b'{"ok":1}')
    again = await journal.append("t1", "user:alice", [draft("m2")], request_id="r1", result=b'{"ok":2}')
    assert len(first.entries) == 1 and again.entries == [] and again.replayed_result == b'{"ok":1}'
    assert await journal.head("t1", "user:alice") == 1
    assert await journal.find_request("t1", "user:alice", "r1") == b'{"ok":1}'
    assert await journal.find_request("t1", "user:alice", "r2") is None
    empty = await journal.append("t1", "user:alice", [], request_id="r3", result=b"{}")
    assert empty.entries == [] and empty.replayed_result is None
    assert (await journal.append("t1", "user:alice", [], request_id="r3")).replayed_result == b"{}"


async def test_history_by_memory_and_tenant_isolation(journal):
    await journal.append("t1", "user:alice", [draft("m1", text="v1")])
    await journal.append("t1", "user:alice", [draft("m1", "UPDATE", "v2", 2)])
    await journal.append("t1", "user:alice", [draft("m1", "DELETE", None, 3)])
    history = await journal.history("t1", "m1")
    assert [(e.event, e.version, e.is_deleted) for e in history] == [("ADD", 1, False), ("UPDATE", 2, False),
                                                                      ("DELETE", 3, True)]
    assert await journal.history("t2", "m1") == []


async def test_watermarks_and_lagging(journal):
    await journal.append("t1", "user:alice", [draft("m1"), draft("m2")])
    await journal.append("t1", "user:bob", [draft("m3")])
    assert await journal.watermark("vectors", "t1", "user:alice") == 0
    await journal.set_watermark("vectors", "t1", "user:alice", 2)
    await journal.set_watermark("vectors", "t1", "user:alice", 1)  # never goes back
    assert await journal.watermark("vectors", "t1", "user:alice") == 2
    assert await journal.lagging("vectors") == [("t1", "user:bob", 0, 1)]
    assert await journal.owners() == [("t1", "user:alice"), ("t1", "user:bob")]


async def test_as_of_reconstruction_by_seq_and_time(journal):
    await journal.append("t1", "user:alice", [draft("m1", text="Lives in Berlin")])
    [mid] = (await journal.append("t1", "user:alice", [draft("m1", "UPDATE", "Lives in Paris", 2)])).entries
    await journal.append("t1", "user:alice", [draft("m1", "DELETE", None, 3)])
    assert {r.text for r in replay(await journal.read("t1", "user:alice", until_seq=1)).values()} == {"Lives in Berlin"}
    at = await journal.read("t1", "user:alice", until_ts=mid.ts)
    assert {r.text for r in replay(at).values()} == {"Lives in Paris"}
    assert replay(await journal.read("t1", "user:alice")) == {}


async def test_entries_round_trip_every_field(journal):
    d = EntryDraft(id="e1", memory_id="m1", event="ADD", old_memory=None, new_memory="ünïcode ✓",
                   scope=Scope(user_id="u", agent_id="a", run_id="r"), tenant="t1", metadata={"k": [1, {"x": None}]},
                   created_at="c", actor_id="bot", role="assistant", cause="req", version=1, hash="h")
    [stored] = (await journal.append("t1", "user:u", [d])).entries
    [read] = await journal.read("t1", "user:u")
    assert read == stored and read.metadata == {"k": [1, {"x": None}]} and read.scope.run_id == "r"


async def test_unreachable_postgres_is_a_typed_error():
    j = PostgresJournal("postgresql://nobody@127.0.0.1:1/none", timeout_s=1)
    with pytest.raises(BackendUnavailable, match="PostgreSQL"):
        await j.open()
    await j.close()


async def test_relation_entries_share_the_owners_seq_and_round_trip(journal):
    from runtime.model import RelationFact, replay_relations

    fact = RelationFact(source_id="e1", source="alice", relationship="lives_in", destination_id="e2",
                        destination="Paris", valid_at="2026-01-01")
    rel = EntryDraft(id="r-e1", memory_id="rel-1", event="ADD", old_memory=None, new_memory=fact.text(), scope=SCOPE,
                     tenant="t1", created_at="c", kind="relation", relation=fact)
    appended = await journal.append("t1", "user:alice", [draft("m1"), rel])
    assert [(e.seq, e.kind) for e in appended.entries] == [(1, "memory"), (2, "relation")]
    read = await journal.read("t1", "user:alice")
    assert read == appended.entries and read[1].relation == fact
    assert set(replay(read)) == {"m1"} and set(replay_relations(read)) == {"rel-1"}
    assert [e.kind for e in await journal.history("t1", "rel-1")] == ["relation"]


async def test_bulk_appends_and_reads_while_small_writes_go_on(journal):
    """Bulk work (over SMALL_APPEND drafts, long reads) runs off the event loop in SQLite; small
    appends interleaved with it keep the owner's seq gapless."""
    from runtime.journal.sql import SMALL_APPEND

    async def bulk() -> None:
        await journal.append("t1", "user:alice", [draft(f"bulk-{i}") for i in range(SMALL_APPEND * 3)])

    async def small() -> None:
        for i in range(10):
            await journal.append("t1", "user:alice", [draft(f"small-{i}")])
            await journal.read("t1", "user:alice")

    async with anyio.create_task_group() as tg:
        tg.start_soon(bulk)
        tg.start_soon(small)
    entries = await journal.read("t1", "user:alice")
    assert [e.seq for e in entries] == list(range(1, SMALL_APPEND * 3 + 11))
    assert await journal.head("t1", "user:alice") == SMALL_APPEND * 3 + 10


async def test_sqlite_checkpoints_the_wal_off_the_event_loop(tmp_path):
    """The writer never checkpoints by itself; every ``checkpoint_every`` commits a checkpoint copies
    the WAL into the database file, and closing copies the rest."""
    import shutil
    import sqlite3

    path = tmp_path / "journal.sqlite3"

    def entries_in_database_file() -> int:  # the main file alone, as if the WAL were lost
        copy = tmp_path / "copy.sqlite3"
        shutil.copyfile(path, copy)
        with sqlite3.connect(copy) as connection:
            return connection.execute("SELECT count(*) FROM entries").fetchone()[0]

    journal = SQLiteJournal(path, checkpoint_every=4)
    await journal.open()  # the schema is commit 1
    for i in range(6):  # commits 2-7
        await journal.append("t1", "user:alice", [draft(f"m{i}")])
    assert entries_in_database_file() == 3  # checkpointed at commit 4: three appends
    await journal.append("t1", "user:alice", [draft("m6")])  # commit 8: checkpoint
    await journal.append("t1", "user:alice", [draft("m7")])  # commit 9: in the WAL only
    assert entries_in_database_file() == 7
    await journal.close()
    assert entries_in_database_file() == 8
