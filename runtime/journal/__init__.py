"""The journal: the append-only, per-owner history log that is memstream's source of truth."""

from runtime.journal.factory import make_journal
from runtime.journal.port import Appended, Journal

__all__ = ["Appended", "Journal", "make_journal"]
