"""SQLite (WAL) journal: the embedded default. One connection, statements run in a worker
thread so the event loop never blocks on disk."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from runtime.errors import BackendUnavailable
from runtime.journal.sql import SqlJournal


class _SQLiteTx:
    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return self._connection.execute(sql, tuple(params)).fetchall()

        try:
            return await anyio.to_thread.run_sync(run)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"SQLite journal: {exc}", backend="journal") from exc


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

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_SQLiteTx]:
        if self._connection is None:
            raise BackendUnavailable("the SQLite journal is not open", backend="journal")
        async with self._lock:
            tx = _SQLiteTx(self._connection)
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await tx.execute("ROLLBACK")
                raise
            else:
                with anyio.CancelScope(shield=True):
                    await tx.execute("COMMIT")
