"""Owner → shard by rendezvous (highest-random-weight) hashing.

Pure and deterministic across processes (blake2b, not Python's salted ``hash``): the gateway,
the ingestion job and every shard agree on where an owner lives, and changing the shard list
moves only the owners of the shards that changed.
"""

from __future__ import annotations

import hashlib


def _weight(key: str, node: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{node}\x1f{key}".encode(), digest_size=8).digest(), "big")


def pick(key: str, nodes: list[str]) -> str:
    if not nodes:
        raise ValueError("no shards to route to")
    return max(nodes, key=lambda node: _weight(key, node))


def owner_key(tenant: str, owner: str) -> str:
    return f"{tenant}\x1f{owner}"


def shard_names(count: int) -> list[str]:
    return [f"shard-{i}" for i in range(count)]
