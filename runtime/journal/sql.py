"""The journal's logic, written once, sans I/O: each transaction is a generator of statements.

SQLite and PostgreSQL differ only in how a statement is run, the placeholder style and the
binary column type. A transaction here yields ``(sql, params)`` and is sent back the rows;
each adapter drives it with ``drive`` or ``drive_async`` - SQLite whole in one call (inline on
the event loop for a turn's transaction, in a worker thread for bulk work: the thread hops, not
the SQL, had been most of the journal's cost per turn), PostgreSQL awaiting each statement.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar

import msgspec

from runtime.journal.port import Appended
from runtime.model import EntryDraft, JournalEntry

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(JournalEntry).decode

T = TypeVar("T")
SMALL_APPEND = 64  # drafts in an append that still count as small (a turn; not a delete_all of thousands)
Rows = list[tuple[Any, ...]]
Statement = tuple[str, Sequence[Any]]
Steps = Generator[Statement, Rows, T]


def drive(steps: Steps[T], execute: Callable[[str, Sequence[Any]], Rows]) -> T:
    """Run a transaction's statements with a blocking ``execute`` (SQLite)."""
    try:
        statement = next(steps)
        while True:
            statement = steps.send(execute(*statement))
    except StopIteration as done:
        return done.value


async def drive_async(steps: Steps[T], execute: Callable[[str, Sequence[Any]], Awaitable[Rows]]) -> T:
    """Run a transaction's statements with an async ``execute`` (PostgreSQL)."""
    try:
        statement = next(steps)
        while True:
            statement = steps.send(await execute(*statement))
    except StopIteration as done:
        return done.value


def _one(sql: str, params: Sequence[Any] = ()) -> Steps[Rows]:
    rows = yield sql, params
    return rows


class SqlJournal:
    """Shared implementation; subclasses provide ``_transact`` and the dialect."""

    placeholder = "?"
    blob_type = "BLOB"
    prefix = ""

    async def _transact(self, steps: Steps[T], *, write: bool = True, small: bool = False) -> T:
        """Run one transaction's statements. ``write=False``: a read that needs no write lock;
        ``small``: bounded work (a turn's append, a point lookup) that an adapter may run inline."""
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        statement = statement.replace("{p}", self.prefix).replace("{blob}", self.blob_type)
        return statement.replace("?", self.placeholder) if self.placeholder != "?" else statement

    async def _run(self, statement: str, params: Sequence[Any] = (), *, write: bool = False,
                   small: bool = False) -> Rows:
        return await self._transact(_one(self._sql(statement), params), write=write, small=small)

    def _schema_preamble(self) -> list[str]:
        """Statements run first in the schema transaction (PostgreSQL serializes creators)."""
        return []

    def _schema_steps(self) -> Steps[None]:
        for statement in self._schema_preamble():
            yield statement, ()
        for statement in SCHEMA:
            yield self._sql(statement), ()

    async def _create_schema(self) -> None:
        await self._transact(self._schema_steps())

    async def append(
        self, tenant: str, owner: str, drafts: list[EntryDraft], *, request_id: str | None = None,
        result: bytes | None = None,
    ) -> Appended:
        return await self._transact(self._append_steps(tenant, owner, drafts, request_id, result),
                                    small=len(drafts) <= SMALL_APPEND)

    def _append_steps(self, tenant: str, owner: str, drafts: list[EntryDraft], request_id: str | None,
                      result: bytes | None) -> Steps[Appended]:
        if request_id is not None:
            inserted = yield (
                self._sql("INSERT INTO {p}requests (tenant, owner, request_id, result) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT DO NOTHING RETURNING 1"),
                (tenant, owner, request_id, result or b""),
            )
            if not inserted:
                rows = yield (
                    self._sql("SELECT result FROM {p}requests WHERE tenant = ? AND owner = ? AND request_id = ?"),
                    (tenant, owner, request_id),
                )
                return Appended(entries=[], replayed_result=bytes(rows[0][0]))
        if not drafts:
            return Appended(entries=[])
        rows = yield (
            self._sql("INSERT INTO {p}heads (tenant, owner, head) VALUES (?, ?, ?) "
                      "ON CONFLICT (tenant, owner) DO UPDATE SET head = {p}heads.head + excluded.head "
                      "RETURNING head"),
            (tenant, owner, len(drafts)),
        )
        first = int(rows[0][0]) - len(drafts) + 1
        now = time.time()
        entries = [
            JournalEntry(seq=first + i, ts=now, is_deleted=d.event == "DELETE", **msgspec.structs.asdict(d))
            for i, d in enumerate(drafts)
        ]
        insert = self._sql("INSERT INTO {p}entries (tenant, owner, seq, memory_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)")
        for entry in entries:
            yield insert, (tenant, owner, entry.seq, entry.memory_id, entry.ts, _encode(entry))
        return Appended(entries=entries)

    async def find_request(self, tenant: str, owner: str, request_id: str) -> bytes | None:
        rows = await self._run(
            "SELECT result FROM {p}requests WHERE tenant = ? AND owner = ? AND request_id = ?",
            (tenant, owner, request_id), small=True,
        )
        return bytes(rows[0][0]) if rows else None

    async def read(
        self, tenant: str, owner: str, *, after_seq: int = 0, until_seq: int | None = None,
        until_ts: float | None = None, limit: int | None = None,
    ) -> list[JournalEntry]:
        sql = "SELECT body FROM {p}entries WHERE tenant = ? AND owner = ? AND seq > ?"
        params: list[Any] = [tenant, owner, after_seq]
        if until_seq is not None:
            sql += " AND seq <= ?"
            params.append(until_seq)
        if until_ts is not None:
            sql += " AND ts <= ?"
            params.append(until_ts)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_decode(bytes(row[0])) for row in await self._run(sql, params)]

    async def head(self, tenant: str, owner: str) -> int:
        rows = await self._run("SELECT head FROM {p}heads WHERE tenant = ? AND owner = ?", (tenant, owner), small=True)
        return int(rows[0][0]) if rows else 0

    async def history(self, tenant: str, memory_id: str) -> list[JournalEntry]:
        rows = await self._run(
            "SELECT body FROM {p}entries WHERE tenant = ? AND memory_id = ? ORDER BY seq", (tenant, memory_id)
        )
        return [_decode(bytes(row[0])) for row in rows]

    async def owners(self, tenant: str | None = None) -> list[tuple[str, str]]:
        if tenant is None:
            rows = await self._run("SELECT tenant, owner FROM {p}heads ORDER BY tenant, owner")
        else:
            rows = await self._run("SELECT tenant, owner FROM {p}heads WHERE tenant = ? ORDER BY owner", (tenant,))
        return [(str(t), str(o)) for t, o in rows]

    async def heads(self, tenant: str) -> list[tuple[str, int]]:
        rows = await self._run("SELECT owner, head FROM {p}heads WHERE tenant = ? ORDER BY owner", (tenant,))
        return [(str(o), int(h)) for o, h in rows]

    async def watermark(self, projection: str, tenant: str, owner: str) -> int:
        rows = await self._run(
            "SELECT seq FROM {p}watermarks WHERE projection = ? AND tenant = ? AND owner = ?",
            (projection, tenant, owner), small=True,
        )
        return int(rows[0][0]) if rows else 0

    async def set_watermark(self, projection: str, tenant: str, owner: str, seq: int) -> None:
        await self._run(
            "INSERT INTO {p}watermarks (projection, tenant, owner, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (projection, tenant, owner) DO UPDATE SET seq = "
            "CASE WHEN excluded.seq > {p}watermarks.seq THEN excluded.seq ELSE {p}watermarks.seq END",
            (projection, tenant, owner, seq), write=True, small=True,
        )

    async def lagging(self, projection: str) -> list[tuple[str, str, int, int]]:
        rows = await self._run(
            "SELECT h.tenant, h.owner, COALESCE(w.seq, 0), h.head FROM {p}heads h "
            "LEFT JOIN {p}watermarks w ON w.projection = ? AND w.tenant = h.tenant AND w.owner = h.owner "
            "WHERE h.head > COALESCE(w.seq, 0) ORDER BY h.tenant, h.owner",
            (projection,),
        )
        return [(str(t), str(o), int(w), int(h)) for t, o, w, h in rows]


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}heads (tenant TEXT NOT NULL, owner TEXT NOT NULL, head BIGINT NOT NULL, "
    "PRIMARY KEY (tenant, owner))",
    "CREATE TABLE IF NOT EXISTS {p}entries (tenant TEXT NOT NULL, owner TEXT NOT NULL, seq BIGINT NOT NULL, "
    "memory_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, body {blob} NOT NULL, PRIMARY KEY (tenant, owner, seq))",
    "CREATE INDEX IF NOT EXISTS entries_by_memory ON {p}entries (tenant, memory_id, seq)",
    "CREATE TABLE IF NOT EXISTS {p}requests (tenant TEXT NOT NULL, owner TEXT NOT NULL, request_id TEXT NOT NULL, "
    "result {blob} NOT NULL, PRIMARY KEY (tenant, owner, request_id))",
    "CREATE TABLE IF NOT EXISTS {p}watermarks (projection TEXT NOT NULL, tenant TEXT NOT NULL, "
    "owner TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (projection, tenant, owner))",
)

