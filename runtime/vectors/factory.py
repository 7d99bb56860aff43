"""Config → vector store adapter."""

from __future__ import annotations

import os

from runtime.config import Config, QdrantConfig, QdrantEdgeConfig
from runtime.vectors.hybrid import FusionSettings
from runtime.vectors.port import VectorStore
from runtime.vectors.sparse import SparseEncoder


def retrieval_parts(config: Config) -> tuple[SparseEncoder, FusionSettings]:
    """The BM25 encoder and the fusion settings of ``config.retrieval``."""
    r = config.retrieval
    return (SparseEncoder(k=r.bm25_k, b=r.bm25_b, avg_len=r.bm25_avg_len, language=r.language),
            FusionSettings(method=r.fusion, rrf_k=r.rrf_k, prefetch_factor=r.prefetch_factor,
                           min_prefetch=r.min_prefetch))


def make_vector_store(config: Config, *, path_suffix: str | None = None) -> VectorStore:
    section = config.vector_store
    sparse, fusion = retrieval_parts(config)
    if isinstance(section, QdrantEdgeConfig):
        from runtime.vectors.edge import EdgeVectorStore

        path = config.data_path(section.path)
        if path_suffix:
            path = path / path_suffix
        return EdgeVectorStore(path, hnsw_m=section.hnsw_m, hnsw_payload_m=section.hnsw_payload_m,
                               optimize_every=section.optimize_every, search_threads=section.search_threads,
                               wal=section.wal, flush_every=section.flush_every, sparse=sparse, fusion=fusion)
    assert isinstance(section, QdrantConfig)
    from runtime.vectors.qdrant import QdrantVectorStore

    return QdrantVectorStore(
        url=section.url or os.environ.get("MEMSTREAM_QDRANT_URL"), location=section.location,
        api_key_env=section.api_key_env, collection=section.collection, shard_number=section.shard_number,
        replication_factor=section.replication_factor, write_consistency_factor=section.write_consistency_factor,
        on_disk_payload=section.on_disk_payload, timeout_s=section.timeout_s,
        dedicated_tenants=section.dedicated_tenants, dedicated_shard_number=section.dedicated_shard_number,
        sparse=sparse, fusion=fusion,
    )
