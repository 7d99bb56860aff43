"""Sparse vectors for memories stored before hybrid search existed: a backfill from the journal.

The journal is the source of truth, so the backfill replays each owner's entries to the memories
they leave, and writes the BM25 vector of each one the store holds (dense vectors and payloads
stay as they are: nothing is re-embedded). Progress is a watermark per owner, like the other
projections', so an interrupted run resumes with the owners it had not finished. Run it with
writers stopped: the embedded store admits one process anyway, and a writer that opened the
store before it had sparse vectors would keep writing points without them.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import structlog

from runtime.journal import Journal
from runtime.model import replay
from runtime.vectors import VectorStore

log = structlog.get_logger("memstream.backfill")
SPARSE = "sparse"  # the watermark's projection name
BATCH = 500


class BackfillReport(msgspec.Struct):
    slot_added: bool  # the store had no sparse vector and was given one by this run
    owners: int  # owners filled in by this run (the ones finished before are skipped)
    memories: int  # live memories of those owners, per the journal
    written: int  # of them, found in the store and given their sparse vector


async def pending_owners(journal: Journal) -> list[tuple[str, str, int]]:
    """(tenant, owner, head) of every owner whose sparse vectors are not all written yet."""
    return [(tenant, owner, head) for tenant, owner, _, head in await journal.lagging(SPARSE)]


async def backfill_sparse(journal: Journal, vectors: VectorStore, *,
                          owners: list[tuple[str, str, int]] | None = None,
                          progress: Callable[[int], None] | None = None) -> BackfillReport:
    """Fill in ``owners`` (default: every pending one). ``progress`` is called after each owner with
    the number of its memories (a progress bar's update)."""
    added = await vectors.add_sparse_slot()
    owners = await pending_owners(journal) if owners is None else owners
    memories = written = 0
    for tenant, owner, head in owners:
        records = list(replay(await journal.read(tenant, owner, until_seq=head)).values())
        for start in range(0, len(records), BATCH):
            chunk = records[start:start + BATCH]
            written += await vectors.write_sparse(chunk)
        memories += len(records)
        await vectors.flush()  # a store without a WAL keeps the writes only once flushed
        await journal.set_watermark(SPARSE, tenant, owner, head)
        if progress is not None:
            progress(len(records))
    log.info("sparse_backfill", slot_added=added, owners=len(owners), memories=memories, written=written)
    return BackfillReport(slot_added=added, owners=len(owners), memories=memories, written=written)
