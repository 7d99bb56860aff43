"""``memstream backfill-sparse``: BM25 sparse vectors for the memories stored before hybrid search.

Works where the stores are: with the embedded journal (SQLite), once for ``data_dir`` (the local
runtime) and once for each ``shard-N`` folder in it (the Ray runtime's shard actors); with the
PostgreSQL journal, once. Stop ``memstream serve`` first (an Edge shard admits one process, and
writers started before the change would keep writing points without sparse vectors). Run again
after an interruption: owners already filled in are skipped.

    memstream backfill-sparse [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import anyio
import msgspec
from tqdm import tqdm

from runtime.backfill import backfill_sparse, pending_owners
from runtime.config import Config, SQLiteJournalConfig, load_config
from runtime.embedders import make_embedder
from runtime.journal import make_journal
from runtime.vectors import make_vector_store

SHARD_DIR = re.compile(r"shard-\d+")


def locations(config: Config) -> list[Config]:
    """The configs whose journal has memories: the data folder and its shard folders, or the one
    shared journal."""
    if not isinstance(config.journal, SQLiteJournalConfig):
        return [config]
    root = Path(config.data_dir)
    shards = sorted((d for d in root.glob("shard-*") if SHARD_DIR.fullmatch(d.name) and d.is_dir()),
                    key=lambda d: int(d.name.split("-")[1]))
    found = [msgspec.structs.replace(config, data_dir=str(d)) for d in [root, *shards]]
    return [c for c in found if c.data_path(config.journal.path).exists()]


async def backfill_location(config: Config, dims: int, dry_run: bool) -> dict:
    journal, vectors = make_journal(config), make_vector_store(config)
    await journal.open()
    try:
        await vectors.open(dims)
        owners = await pending_owners(journal)
        row = {"data_dir": config.data_dir, "had_sparse": vectors.has_sparse, "pending_owners": len(owners)}
        if dry_run or not owners and vectors.has_sparse:
            return row
        with tqdm(total=len(owners), desc=f"sparse vectors ({config.data_dir})", unit="owner") as bar:
            def advance(memories: int) -> None:
                bar.update(1)
                bar.set_postfix(memories=memories)

            report = await backfill_sparse(journal, vectors, owners=owners, progress=advance)
        return {**row, **msgspec.to_builtins(report)}
    finally:
        await vectors.close()
        await journal.close()


async def run(config: Config, dry_run: bool) -> list[dict]:
    embedder = make_embedder(config.embedder)
    dims = embedder.dims
    await embedder.close()
    return [await backfill_location(c, dims, dry_run) for c in locations(config)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memstream backfill-sparse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--dry-run", action="store_true", help="only report what is pending")
    args = parser.parse_args(argv)
    print(json.dumps(anyio.run(run, load_config(args.config or "local"), args.dry_run), indent=2))
