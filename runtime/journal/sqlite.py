"""SQLite (WAL) journal: the embedded default.

Two connections. The writer runs on the event loop itself, for bounded work only - a turn's
append, point lookups, watermarks: in WAL mode with ``synchronous=NORMAL`` a commit writes to
the OS page cache and does not fsync, so these take tens of microseconds, where a hop to a
worker thread cost ~0.1 ms of CPU and, on a busy 2-core box, milliseconds of waiting for the
thread to be scheduled. What can be large (replays, history, bulk appends) runs in a worker
thread: reads on the reader connection (WAL readers never block the writer), bulk writes on
the writer. The writer never checkpoints on its own (a checkpoint fsyncs): every
``checkpoint_every`` commits a PASSIVE checkpoint runs on the reader's thread, and a full one
when the journal closes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import structlog

from runtime.errors import BackendUnavailable
from runtime.journal.sql import Rows, SqlJournal, Steps, drive

T = TypeVar("T")
log = structlog.get_logger("memstream.journal.sqlite")


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return connection


def _run(connection: sqlite3.Connection, steps: Steps[T], write: bool) -> T:
    def execute(sql: str, params: Sequence[Any]) -> Rows:
        return connection.execute(sql, tuple(params)).fetchall()

    if not write:  # autocommit statements: WAL gives each a consistent snapshot without a lock
        return drive(steps, execute)
    connection.execute("BEGIN IMMEDIATE")
    try:
        value = drive(steps, execute)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return value


class SQLiteJournal(SqlJournal):
    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000, checkpoint_every: int = 500):
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._checkpoint_every = checkpoint_every
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # the writer connection: one user at a time, inline or in a thread. fast_acquire: an uncontended
        # lock does not yield to the event loop, which under load cost milliseconds behind other ready tasks
        self._write_lock = anyio.Lock(fast_acquire=True)
        self._read_lock = anyio.Lock(fast_acquire=True)
        self._commits = 0

    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def connect() -> tuple[sqlite3.Connection, sqlite3.Connection]:
            writer = _connect(self.path, self._busy_timeout_ms)
            writer.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the event loop
            return writer, _connect(self.path, self._busy_timeout_ms)

        try:
            self._writer, self._reader = await anyio.to_thread.run_sync(connect)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"cannot open SQLite journal at {self.path}: {exc}", backend="journal") from exc
        await self._create_schema()

    async def close(self) -> None:
        if self._writer is None or self._reader is None:
            return
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        async with self._write_lock, self._read_lock:
            def finish() -> None:
                try:
                    reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    reader.close()
                    writer.close()

            await anyio.to_thread.run_sync(finish)

    def _connections(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        if self._writer is None or self._reader is None:
            raise BackendUnavailable("the SQLite journal is not open", backend="journal")
        return self._writer, self._reader

    async def _transact(self, steps: Steps[T], *, write: bool = True, small: bool = False) -> T:
        writer, reader = self._connections()
        try:
            if small:
                async with self._write_lock:
                    value = _run(writer, steps, write)
            elif write:
                async with self._write_lock:  # a cancelled caller still waits: the transaction ends either way
                    value = await anyio.to_thread.run_sync(_run, writer, steps, write)
            else:
                async with self._read_lock:
                    return await anyio.to_thread.run_sync(_run, reader, steps, write)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"SQLite journal: {exc}", backend="journal") from exc
        if write:
            self._commits += 1
            if self._commits % self._checkpoint_every == 0:
                await self._checkpoint()
        return value

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: readers and the writer go on meanwhile). It runs
        after a commit, so a failure must not fail that caller: the next checkpoint tries again."""
        _, reader = self._connections()
        async with self._read_lock:
            try:
                await anyio.to_thread.run_sync(reader.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("journal_checkpoint_failed", path=str(self.path), error=str(exc))
