"""Qdrant Edge: Qdrant's engine in-process, one shard directory per store instance.

Only one process can open a shard (its WAL is locked), so the process that owns a set of
owners (the engine, or one Ray shard actor) owns their Edge shard. Calls are synchronous
and hold the GIL; searches and upserts take well under a millisecond per point here, so they
run inline. The index is tenant-only HNSW (``m=0``, ``payload_m``): one small graph per owner,
which built in seconds where a global graph took minutes at 100k points on 2 cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HnswIndexConfig,
    IsEmptyCondition,
    KeywordIndexParams,
    MatchAny,
    MatchSubstring,
    MatchValue,
    PayloadSchemaType,
    Point,
    Query,
    QueryBatchRequest,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    UpdateOperation,
)

from runtime.errors import BackendUnavailable
from runtime.filters import Expr
from runtime.model import MemoryRecord, Scope
from runtime.vectors import qdrant_filter
from runtime.vectors.port import INDEXED_KEYWORDS, METADATA_PREFIX, Hit, SearchOne, from_payload, is_uuid, to_payload

log = structlog.get_logger("memstream.vectors.edge")


# qdrant-edge-py 0.9.0 never matches a boolean payload value (MatchValue(True) finds nothing,
# indexed or not). Booleans in metadata are mirrored as "true"/"false" strings under this key
# and boolean conditions are pointed at the mirror.
BOOL_MIRROR = "_bool."


def _bool_mirror(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        mirrored = {k: _bool_mirror(v) for k, v in value.items()}
        return {k: v for k, v in mirrored.items() if v is not None} or None
    if isinstance(value, list):
        items = [_bool_mirror(v) for v in value if isinstance(v, (bool, dict, list))]
        return [v for v in items if v is not None] or None
    return None


def _edge_payload(record: MemoryRecord) -> dict[str, Any]:
    payload = to_payload(record)
    mirror = _bool_mirror(record.metadata)
    if mirror:
        payload[BOOL_MIRROR[:-1]] = mirror
    return payload


def _mirror_key(key: str) -> str:
    return BOOL_MIRROR + key[len(METADATA_PREFIX):]


class EdgeDialect:
    def equals(self, key: str, value: Any) -> Any:
        if isinstance(value, bool):
            return FieldCondition(_mirror_key(key), match=MatchValue(_bool_mirror(value)))
        return FieldCondition(key, match=MatchValue(value))

    def any_of(self, key: str, values: list[Any]) -> Any:
        flags = [_bool_mirror(v) for v in values if isinstance(v, bool)]
        others = [v for v in values if not isinstance(v, bool)]
        conditions = ([FieldCondition(key, match=MatchAny(others))] if others else []) + \
            ([FieldCondition(_mirror_key(key), match=MatchAny(flags))] if flags else [])
        return conditions[0] if len(conditions) == 1 else Filter(should=conditions)

    def range(self, key: str, **bounds: float) -> Any:
        return FieldCondition(key, range=RangeFloat(**bounds))

    def substring(self, key: str, text: str) -> Any:
        return FieldCondition(key, match=MatchSubstring(text))

    def is_empty(self, key: str) -> Any:
        return IsEmptyCondition(key)

    def filter(self, must: list[Any] | None = None, should: list[Any] | None = None,
               must_not: list[Any] | None = None) -> Any:
        return Filter(must=must, should=should, must_not=must_not)


_DIALECT = EdgeDialect()


class EdgeVectorStore(SearchOne):
    def __init__(self, path: str | Path, *, hnsw_m: int = 0, hnsw_payload_m: int = 16, optimize_every: int = 5000,
                 search_threads: int | None = 1):
        self.path = Path(path)
        self._search_threads = search_threads
        self._hnsw = HnswIndexConfig(m=hnsw_m, ef_construct=100, full_scan_threshold=10000, payload_m=hnsw_payload_m)
        self._optimize_every = optimize_every
        self._writes_since_optimize = 0
        self._shard: EdgeShard | None = None

    def _filter(self, tenant: str, scope: Scope | None, filters: Expr | None) -> Any:
        return qdrant_filter.build_filter(_DIALECT, tenant, scope, filters)

    @property
    def shard(self) -> EdgeShard:
        if self._shard is None:
            raise BackendUnavailable("the Qdrant Edge shard is not open", backend="vector_store")
        return self._shard

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # qdrant-edge raises plain Exception for every engine error
            raise BackendUnavailable(f"Qdrant Edge {what} failed: {exc}", backend="vector_store") from exc

    async def open(self, dims: int) -> None:
        if self._shard is not None:
            return
        config = EdgeConfig(vectors=EdgeVectorParams(size=dims, distance=Distance.Cosine), hnsw_config=self._hnsw,
                            optimizers=EdgeOptimizersConfig(indexing_threshold=1000),
                            max_search_threads=self._search_threads)
        if (self.path / "segments").is_dir():
            self._shard = self._call(f"open of {self.path} (is another process using it?)", EdgeShard.load,
                                     str(self.path), config)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._shard = self._call(f"create of {self.path}", EdgeShard.create, str(self.path), config)
        for field in INDEXED_KEYWORDS:
            schema = KeywordIndexParams(is_tenant=True) if field == "owner" else PayloadSchemaType.Keyword
            self._call("index creation", self.shard.update, UpdateOperation.create_field_index(field, schema))

    async def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            shard.flush()
            shard.close()

    def _wrote(self, count: int) -> None:
        self._writes_since_optimize += count
        if self._writes_since_optimize >= self._optimize_every:
            self._writes_since_optimize = 0
            self.optimize()

    def optimize(self) -> bool:
        """Build the per-owner HNSW graphs for what was written since the last call."""
        return bool(self._call("optimize", self.shard.optimize))

    async def upsert(self, records: list[MemoryRecord], vectors: list[list[float]]) -> None:
        if not records:
            return
        points = [Point(r.id, v, _edge_payload(r)) for r, v in zip(records, vectors)]
        self._call("upsert", self.shard.update, UpdateOperation.upsert_points(points))
        self._wrote(len(points))

    async def delete(self, memory_ids: list[str]) -> None:
        ids = [m for m in memory_ids if is_uuid(m)]
        if ids:
            self._call("delete", self.shard.update, UpdateOperation.delete_points(ids))

    async def search_batch(self, vectors: list[list[float]], *, tenant: str, scope: Scope | None,
                           filters: Expr | None, limit: int, threshold: float | None = None) -> list[list[Hit]]:
        if not vectors:
            return []
        flt = self._filter(tenant, scope, filters)
        requests = [QueryRequest(limit=limit, query=Query.Nearest(v), filter=flt, score_threshold=threshold,
                                 with_payload=True, with_vector=False) for v in vectors]
        batches = self._call("search", self.shard.query_batch, QueryBatchRequest(requests))
        return [[Hit(from_payload(str(p.id), p.payload or {}), float(p.score)) for p in points] for points in batches]

    async def get(self, tenant: str, memory_ids: list[str]) -> list[MemoryRecord]:
        ids = [m for m in memory_ids if is_uuid(m)]
        if not ids:
            return []
        points = self._call("retrieve", self.shard.retrieve, ids, True, False)
        records = [from_payload(str(p.id), p.payload or {}) for p in points]
        return [r for r in records if r.tenant == tenant]

    async def list(self, *, tenant: str, scope: Scope | None, filters: Expr | None, limit: int,
                   offset: int = 0) -> list[MemoryRecord]:
        wanted, records, cursor = offset + limit, [], None
        flt = self._filter(tenant, scope, filters)
        while len(records) < wanted:
            request = ScrollRequest(offset=cursor, limit=min(wanted - len(records), 1000), filter=flt,
                                    with_payload=True, with_vector=False)
            points, cursor = self._call("scroll", self.shard.scroll, request)
            records.extend(from_payload(str(p.id), p.payload or {}) for p in points)
            if cursor is None:
                break
        return records[offset:wanted]

    async def count(self, *, tenant: str, scope: Scope | None, filters: Expr | None) -> int:
        return int(self._call("count", self.shard.count,
                              CountRequest(exact=True, filter=self._filter(tenant, scope, filters))))
