"""Config → vector store adapter."""

from __future__ import annotations

import os

from runtime.config import Config, QdrantConfig, QdrantEdgeConfig
from runtime.vectors.port import VectorStore


def make_vector_store(config: Config, *, path_suffix: str | None = None) -> VectorStore:
    section = config.vector_store
    if isinstance(section, QdrantEdgeConfig):
        from runtime.vectors.edge import EdgeVectorStore

        path = config.data_path(section.path)
        if path_suffix:
            path = path / path_suffix
        return EdgeVectorStore(path, hnsw_m=section.hnsw_m, hnsw_payload_m=section.hnsw_payload_m,
                               optimize_every=section.optimize_every, search_threads=section.search_threads)
    assert isinstance(section, QdrantConfig)
    from runtime.vectors.qdrant import QdrantVectorStore

    return QdrantVectorStore(
        url=section.url or os.environ.get("MEMSTREAM_QDRANT_URL"), location=section.location,
        api_key_env=section.api_key_env, collection=section.collection, shard_number=section.shard_number,
        replication_factor=section.replication_factor, write_consistency_factor=section.write_consistency_factor,
        on_disk_payload=section.on_disk_payload, timeout_s=section.timeout_s,
        dedicated_tenants=section.dedicated_tenants, dedicated_shard_number=section.dedicated_shard_number,
    )
