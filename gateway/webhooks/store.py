"""Where webhook registrations and their lanes' cursors live: beside the journal.

SQLite (the embedded default) keeps them in a file of their own next to the journal
(``webhooks.path`` under ``data_dir``): on Ray every shard owns its journal file, and the
gateway, which delivers, owns this one. PostgreSQL (the cluster preset) keeps them in the
journal's database and schema. The adapters are the journal's own (``SQLiteJournal``,
``PostgresJournal``: their connections, locking, transactions and error mapping) with this
schema and these statements instead of the journal's; nothing here is journal data.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.webhooks.policy import Lane
from runtime.config import Config, PostgresJournalConfig
from runtime.journal.postgres import PostgresJournal
from runtime.journal.sql import Steps
from runtime.journal.sqlite import SQLiteJournal

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}webhooks (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL, "
    "url TEXT NOT NULL, secret TEXT NOT NULL, event_types TEXT NOT NULL, is_active INTEGER NOT NULL, "
    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS webhooks_by_tenant ON {p}webhooks (tenant, created_at)",
    "CREATE TABLE IF NOT EXISTS {p}webhook_lanes (webhook_id TEXT NOT NULL, owner TEXT NOT NULL, "
    "delivered BIGINT NOT NULL, attempts INTEGER NOT NULL, retry_at DOUBLE PRECISION NOT NULL, "
    "dead INTEGER NOT NULL, last_error TEXT, dead_since DOUBLE PRECISION, PRIMARY KEY (webhook_id, owner))",
    "CREATE TABLE IF NOT EXISTS {p}webhook_lease (id TEXT PRIMARY KEY, holder TEXT NOT NULL, "
    "expires_at DOUBLE PRECISION NOT NULL)",
)
_WEBHOOK_COLUMNS = "id, tenant, name, url, secret, event_types, is_active, created_at, updated_at"
_LANE_COLUMNS = "webhook_id, owner, delivered, attempts, retry_at, dead, last_error, dead_since"
_LANE_UPSERT = (f"INSERT INTO {{p}}webhook_lanes ({_LANE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (webhook_id, owner) DO UPDATE SET delivered = excluded.delivered, "
                "attempts = excluded.attempts, retry_at = excluded.retry_at, dead = excluded.dead, "
                "last_error = excluded.last_error, dead_since = excluded.dead_since")


class WebhookRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    name: str
    url: str
    secret: str
    event_types: list[str]
    is_active: bool = True
    created_at: str
    updated_at: str


def _webhook(row: tuple[Any, ...]) -> WebhookRow:
    hook_id, tenant, name, url, secret, event_types, active, created, updated = row
    return WebhookRow(id=hook_id, tenant=tenant, name=name, url=url, secret=secret,
                      event_types=msgspec.json.decode(event_types), is_active=bool(active), created_at=created,
                      updated_at=updated)


def _lane(row: tuple[Any, ...]) -> Lane:
    hook_id, owner, delivered, attempts, retry_at, dead, error, since = row
    return Lane(webhook_id=hook_id, owner=owner, delivered=int(delivered), attempts=int(attempts),
                retry_at=float(retry_at), dead=bool(dead), last_error=error,
                dead_since=None if since is None else float(since))


class WebhookSql:
    """The webhook statements, mixed into a journal adapter (which brings ``_transact``, ``_run``
    and ``_sql``); ``_schema_steps`` replaces the journal's tables with these."""

    def _schema_steps(self) -> Steps[None]:
        for statement in self._schema_preamble():
            yield statement, ()
        for statement in SCHEMA:
            yield self._sql(statement), ()

    async def create(self, hook: WebhookRow, lanes: list[Lane]) -> None:
        """The webhook and its starting cursors, in one transaction."""
        await self._transact(self._create_steps(hook, lanes))

    def _create_steps(self, hook: WebhookRow, lanes: list[Lane]) -> Steps[None]:
        sql = self._sql
        yield sql(f"INSERT INTO {{p}}webhooks ({_WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), (
            hook.id, hook.tenant, hook.name, hook.url, hook.secret, msgspec.json.encode(hook.event_types).decode(),
            int(hook.is_active), hook.created_at, hook.updated_at)
        for lane in lanes:
            yield sql(_LANE_UPSERT), _lane_params(lane)

    async def webhooks(self, tenant: str | None = None) -> list[WebhookRow]:
        sql = f"SELECT {_WEBHOOK_COLUMNS} FROM {{p}}webhooks"
        params: tuple[Any, ...] = ()
        if tenant is not None:
            sql, params = sql + " WHERE tenant = ?", (tenant,)
        return [_webhook(row) for row in await self._run(sql + " ORDER BY created_at, id", params)]

    async def webhook(self, tenant: str, hook_id: str) -> WebhookRow | None:
        rows = await self._run(f"SELECT {_WEBHOOK_COLUMNS} FROM {{p}}webhooks WHERE tenant = ? AND id = ?",
                               (tenant, hook_id), small=True)
        return _webhook(rows[0]) if rows else None

    async def update(self, hook: WebhookRow) -> None:
        await self._run("UPDATE {p}webhooks SET name = ?, url = ?, event_types = ?, is_active = ?, updated_at = ? "
                        "WHERE tenant = ? AND id = ?",
                        (hook.name, hook.url, msgspec.json.encode(hook.event_types).decode(), int(hook.is_active),
                         hook.updated_at, hook.tenant, hook.id), write=True, small=True)

    async def delete(self, tenant: str, hook_id: str) -> bool:
        return await self._transact(self._delete_steps(tenant, hook_id))

    def _delete_steps(self, tenant: str, hook_id: str) -> Steps[bool]:
        sql = self._sql
        gone = yield sql("DELETE FROM {p}webhooks WHERE tenant = ? AND id = ? RETURNING id"), (tenant, hook_id)
        if gone:
            yield sql("DELETE FROM {p}webhook_lanes WHERE webhook_id = ?"), (hook_id,)
        return bool(gone)

    async def lanes(self, hook_id: str, *, dead_only: bool = False) -> list[Lane]:
        sql = f"SELECT {_LANE_COLUMNS} FROM {{p}}webhook_lanes WHERE webhook_id = ?"
        if dead_only:
            sql += " AND dead = 1"
        return [_lane(row) for row in await self._run(sql + " ORDER BY owner", (hook_id,))]

    async def save_lane(self, lane: Lane) -> None:
        await self._run(_LANE_UPSERT, _lane_params(lane), write=True, small=True)

    async def replay(self, tenant: str, hook_id: str, owner: str | None, now: str) -> list[str]:
        """Dead lanes (all of the webhook's, or ``owner``'s) start again where they stopped; the
        webhook's ``updated_at`` moves, which tells the delivering process to re-read its lanes."""
        return await self._transact(self._replay_steps(tenant, hook_id, owner, now))

    def _replay_steps(self, tenant: str, hook_id: str, owner: str | None, now: str) -> Steps[list[str]]:
        sql = self._sql
        statement = ("UPDATE {p}webhook_lanes SET dead = 0, attempts = 0, retry_at = 0, dead_since = NULL "
                     "WHERE webhook_id = ? AND dead = 1")
        params: tuple[Any, ...] = (hook_id,)
        if owner is not None:
            statement, params = statement + " AND owner = ?", (hook_id, owner)
        revived = yield sql(statement + " RETURNING owner"), params
        yield sql("UPDATE {p}webhooks SET updated_at = ? WHERE tenant = ? AND id = ?"), (now, tenant, hook_id)
        return sorted(str(row[0]) for row in revived)

    async def lease(self, holder: str, now: float, ttl_s: float) -> bool:
        """Whether ``holder`` delivers webhooks for the next ``ttl_s`` (it took or renewed the lease).
        One process delivers at a time, whatever the number of gateways; when it dies, another takes
        over once its lease has expired."""
        rows = await self._run(
            "INSERT INTO {p}webhook_lease (id, holder, expires_at) VALUES ('deliveries', ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE {p}webhook_lease.holder = excluded.holder OR {p}webhook_lease.expires_at < ? RETURNING holder",
            (holder, now + ttl_s, now), write=True, small=True)
        return bool(rows)

    async def release(self, holder: str) -> None:
        """Give the lease up (a graceful stop): another process may deliver at once."""
        await self._run("DELETE FROM {p}webhook_lease WHERE holder = ?", (holder,), write=True, small=True)


def _lane_params(lane: Lane) -> tuple[Any, ...]:
    return (lane.webhook_id, lane.owner, lane.delivered, lane.attempts, lane.retry_at, int(lane.dead),
            lane.last_error, lane.dead_since)


class SQLiteWebhookStore(WebhookSql, SQLiteJournal):
    """Webhooks in their own SQLite file."""


class PostgresWebhookStore(WebhookSql, PostgresJournal):
    """Webhooks in the journal's PostgreSQL schema."""


def open_store(config: Config) -> SQLiteWebhookStore | PostgresWebhookStore:
    """The store for this configuration (not yet opened)."""
    journal = config.journal
    if isinstance(journal, PostgresJournalConfig):
        return PostgresWebhookStore(journal.dsn, schema=journal.schema, pool_min=1, pool_max=2,
                                    timeout_s=journal.timeout_s)
    return SQLiteWebhookStore(config.data_path(config.webhooks.path), busy_timeout_ms=journal.busy_timeout_ms)
