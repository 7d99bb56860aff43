"""SQLite (WAL) journal: the embedded default. One connection; each transaction runs whole in
one worker-thread call, so the event loop never blocks on disk and pays one thread hop per
transaction, not one per statement."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from runtime.errors import BackendUnavailable
from runtime.journal.sql import Rows, SqlJournal, Steps, drive

T = TypeVar("T")


class SQLiteJournal(SqlJournal):
    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None
        self._lock = anyio.Lock()

    async def open(self) -> None:
        if self._connection is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            return connection

        try:
            self._connection = await anyio.to_thread.run_sync(connect)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"cannot open SQLite journal at {self.path}: {exc}", backend="journal") from exc
        await self._create_schema()

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            async with self._lock:
                await anyio.to_thread.run_sync(connection.close)

    async def _transact(self, steps: Steps[T], *, write: bool = True) -> T:
        connection = self._connection
        if connection is None:
            raise BackendUnavailable("the SQLite journal is not open", backend="journal")

        def execute(sql: str, params: Sequence[Any]) -> Rows:
            return connection.execute(sql, tuple(params)).fetchall()

        def run() -> T:
            if not write:  # one autocommit read: WAL gives it a consistent snapshot without a lock
                return drive(steps, execute)
            connection.execute("BEGIN IMMEDIATE")
            try:
                value = drive(steps, execute)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return value

        async with self._lock:
            try:  # a cancelled caller still waits for the thread: the transaction ends, commit or rollback
                return await anyio.to_thread.run_sync(run)
            except sqlite3.OperationalError as exc:
                raise BackendUnavailable(f"SQLite journal: {exc}", backend="journal") from exc
