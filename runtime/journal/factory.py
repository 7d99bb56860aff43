"""Config → journal adapter."""

from __future__ import annotations

from runtime.config import Config, PostgresJournalConfig, SQLiteJournalConfig
from runtime.journal.port import Journal


def make_journal(config: Config) -> Journal:
    section = config.journal
    if isinstance(section, SQLiteJournalConfig):
        from runtime.journal.sqlite import SQLiteJournal

        return SQLiteJournal(config.data_path(section.path), busy_timeout_ms=section.busy_timeout_ms)
    assert isinstance(section, PostgresJournalConfig)
    from runtime.journal.postgres import PostgresJournal

    return PostgresJournal(section.dsn, schema=section.schema, pool_min=section.pool_min,
                           pool_max=section.pool_max, timeout_s=section.timeout_s)
