"""PostgreSQL journal for the cluster preset: every shard of every node shares it.

Gapless per-owner sequence numbers come from a ``heads`` row updated inside the append
transaction: concurrent appenders for one owner serialize on that row lock, and a rolled
back transaction gives its numbers back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from runtime.errors import BackendUnavailable, ConfigError
from runtime.journal.sql import Rows, SqlJournal, Steps, drive_async

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCHEMA_LOCK = 0x6D656D73  # advisory lock key for schema creation ("mems")


class PostgresJournal(SqlJournal):
    placeholder = "%s"
    blob_type = "BYTEA"

    def __init__(self, dsn: str, *, schema: str = "memstream", pool_min: int = 1, pool_max: int = 8,
                 timeout_s: float = 10.0):
        if not _SCHEMA_NAME.match(schema):
            raise ConfigError(f"journal.schema must be a lowercase SQL identifier, got {schema!r}")
        self.schema = schema
        self.prefix = f"{schema}."
        self._timeout_s = timeout_s
        self._pool = AsyncConnectionPool(dsn, min_size=pool_min, max_size=pool_max, open=False,
                                         timeout=timeout_s, kwargs={"autocommit": False})

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self._timeout_s)
        except Exception as exc:  # the pool raises its own PoolTimeout, psycopg OperationalError, ...
            raise BackendUnavailable(f"cannot reach the PostgreSQL journal: {exc}", backend="journal") from exc
        await self._create_schema()

    def _schema_preamble(self) -> list[str]:
        # CREATE ... IF NOT EXISTS races between processes (every shard opens the journal at
        # once); a transaction-scoped advisory lock makes the creators take turns
        return [f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})", f"CREATE SCHEMA IF NOT EXISTS {self.schema}"]

    async def close(self) -> None:
        await self._pool.close()

    async def _transact(self, steps: Steps[T], *, write: bool = True, small: bool = False) -> T:
        try:
            async with self._pool.connection() as connection, connection.transaction():
                async def execute(sql: str, params: Sequence[Any]) -> Rows:
                    cursor = await connection.execute(sql, tuple(params))
                    return await cursor.fetchall() if cursor.description else []

                return await drive_async(steps, execute)
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            raise BackendUnavailable(f"PostgreSQL journal: {exc}", backend="journal") from exc

    async def drop(self) -> None:
        """Remove the whole schema (tests and ``reset --hard`` only)."""
        await self._run(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE", write=True)
