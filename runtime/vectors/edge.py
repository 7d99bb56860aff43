"""Qdrant Edge: Qdrant's engine in-process, one shard directory per store instance.

Only one process can open a shard (its WAL is locked), so the process that owns a set of
owners (the engine, or one Ray shard actor) owns their Edge shard. Calls are synchronous
and hold the GIL; searches and upserts take well under a millisecond per point here, so they
run inline. The index is tenant-only HNSW (``m=0``, ``payload_m``): one small graph per owner,
which built in seconds where a global graph took minutes at 100k points on 2 cores.

Edge has Qdrant's whole query API: sparse vectors with the IDF modifier, prefetch and RRF/DBSF
fusion, so hybrid search is one engine call here as on a server. What it lacks is adding a vector
to an existing shard (its config must match the segments), so a shard created before sparse
vectors existed is copied once into a new shard that has them (``add_sparse_slot``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import structlog
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    HnswIndexConfig,
    IsEmptyCondition,
    KeywordIndexParams,
    MatchAny,
    MatchSubstring,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    Point,
    PointVectors,
    Prefetch,
    Query,
    QueryBatchRequest,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    SparseVector,
    UpdateOperation,
)

from runtime.errors import BackendUnavailable, InvalidRequest
from runtime.filters import Expr
from runtime.model import MemoryRecord, Scope
from runtime.vectors import qdrant_filter
from runtime.vectors.hybrid import NO_SPARSE, FusionSettings, SearchMode, check_mode, query_count
from runtime.vectors.port import INDEXED_KEYWORDS, METADATA_PREFIX, Hit, SearchOne, from_payload, is_uuid, to_payload
from runtime.vectors.sparse import SPARSE_VECTOR, SparseEncoder, SparseTerms

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
WITH_SPARSE = ".with-sparse"  # the copy being built by add_sparse_slot
BEFORE_SPARSE = ".before-sparse"  # the old shard while the copy takes its place


def _sparse(terms: SparseTerms) -> SparseVector:
    return SparseVector(terms.indices, terms.values)


class EdgeVectorStore(SearchOne):
    def __init__(self, path: str | Path, *, hnsw_m: int = 0, hnsw_payload_m: int = 16, optimize_every: int = 5000,
                 search_threads: int | None = 1, wal: bool = False, flush_every: int = 1000,
                 sparse: SparseEncoder | None = None, fusion: FusionSettings | None = None):
        self.path = Path(path)
        self._wal = wal
        self._flush_every = flush_every
        self.flush_every: int | None = None if wal else flush_every  # as opened: see ``open``
        self._search_threads = search_threads
        self._hnsw = HnswIndexConfig(m=hnsw_m, ef_construct=100, full_scan_threshold=10000, payload_m=hnsw_payload_m)
        self._optimize_every = optimize_every
        self._writes_since_optimize = 0
        self._shard: EdgeShard | None = None
        self._lock_fd: int | None = None
        self._dims = 0
        self._encoder = sparse or SparseEncoder()
        self._fusion = fusion or FusionSettings()
        self.has_sparse = False

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

    def _config(self, *, sparse: bool, wal: bool | None = None) -> EdgeConfig:
        """With ``sparse`` the BM25 vector is declared (IDF by the engine); without, an existing
        shard keeps the vectors it has."""
        return EdgeConfig(vectors=EdgeVectorParams(size=self._dims, distance=Distance.Cosine),
                          sparse_vectors={SPARSE_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf)}
                          if sparse else None,
                          hnsw_config=self._hnsw, optimizers=EdgeOptimizersConfig(indexing_threshold=1000),
                          max_search_threads=self._search_threads,
                          wal_enabled=self._wal if wal is None else wal)

    async def open(self, dims: int) -> None:
        if self._shard is not None:
            return
        self._dims = dims
        self._lock()
        try:
            self._finish_swap()
            if (self.path / "segments").is_dir():
                wal = self._created_with_wal()
                self._shard = self._call(f"open of {self.path} (is another process using it?)", EdgeShard.load,
                                         str(self.path), self._config(sparse=False, wal=wal))
                self.has_sparse = self._holds_sparse(self._shard)
            else:
                wal = self._wal
                self._shard = self._create(self.path)
                self.has_sparse = True
            self.flush_every = None if wal else self._flush_every
        except BaseException:
            self._unlock()
            raise

    def _created_with_wal(self) -> bool:
        """Edge refuses to open a shard with another WAL setting than it was created with, so a shard
        keeps its own (recorded in its ``edge_config.json``); ``wal`` applies to new shards, and to a
        shard rebuilt by ``add_sparse_slot``."""
        try:
            recorded = json.loads((self.path / "edge_config.json").read_text()).get("wal_enabled")
        except (OSError, ValueError, AttributeError):
            return self._wal
        return recorded is not False  # a shard created without saying has Edge's default, the WAL

    def _lock(self) -> None:
        """One process per shard directory. Edge's WAL holds a lock of its own; without the WAL
        nothing would stop a second process from opening the same files, so this lock (beside the
        directory, released by the kernel when the process dies) does."""
        if self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BackendUnavailable(f"Qdrant Edge open of {self.path} failed: it is locked (is another process "
                                     "using it?)", backend="vector_store") from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def _create(self, path: Path) -> EdgeShard:
        path.mkdir(parents=True, exist_ok=True)
        shard = self._call(f"create of {path}", EdgeShard.create, str(path), self._config(sparse=True))
        for field in INDEXED_KEYWORDS:
            schema = KeywordIndexParams(is_tenant=True) if field == "owner" else PayloadSchemaType.Keyword
            self._call("index creation", shard.update, UpdateOperation.create_field_index(field, schema))
        return shard

    @staticmethod
    def _holds_sparse(shard: EdgeShard) -> bool:
        try:
            shard.query(QueryRequest(limit=1, query=Query.Nearest(SparseVector([], []), using=SPARSE_VECTOR)))
        except Exception:  # "Not existing vector name": a shard from before sparse vectors
            return False
        return True

    def _finish_swap(self) -> None:
        """Complete a copy that ``add_sparse_slot`` built but had not put in place yet."""
        built = self.path.with_name(self.path.name + WITH_SPARSE)
        old = self.path.with_name(self.path.name + BEFORE_SPARSE)
        if old.is_dir() and built.is_dir() and not self.path.exists():
            built.rename(self.path)
        if old.is_dir() and self.path.is_dir():
            shutil.rmtree(old)

    async def add_sparse_slot(self) -> bool:
        """Copy every point (dense vector and payload) into a new shard that has the sparse vector,
        then put it in the old one's place. An interrupted copy is started over; an interrupted
        swap is finished by the next ``open``."""
        if self.has_sparse:
            return False
        built = self.path.with_name(self.path.name + WITH_SPARSE)
        shutil.rmtree(built, ignore_errors=True)
        copy = self._create(built)
        cursor = None
        while True:
            points, cursor = self._call("scroll", self.shard.scroll, ScrollRequest(
                offset=cursor, limit=1000, with_payload=True, with_vector=True))
            if points:
                self._call("copy", copy.update, UpdateOperation.upsert_points(
                    [Point(p.id, p.vector, p.payload) for p in points]))
            if cursor is None:
                break
        copy.flush()
        copy.close()
        await self.close()
        self.path.rename(self.path.with_name(self.path.name + BEFORE_SPARSE))
        self._finish_swap()
        await self.open(self._dims)
        return True

    async def write_sparse(self, records: list[MemoryRecord]) -> int:
        if not self.has_sparse:
            raise InvalidRequest(NO_SPARSE)
        stored = {str(p.id) for p in self._call("retrieve", self.shard.retrieve,
                                                 [r.id for r in records if is_uuid(r.id)], False, False)}
        present = [r for r in records if r.id in stored]
        if present:
            terms = self._encoder.documents([r.text for r in present])
            self._call("sparse update", self.shard.update, UpdateOperation.update_vectors(
                [PointVectors(r.id, {SPARSE_VECTOR: _sparse(t)}) for r, t in zip(present, terms)]))
        return len(present)

    async def flush(self) -> None:
        self._call("flush", self.shard.flush)

    async def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            shard.flush()
            shard.close()
        self._unlock()

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
        if self.has_sparse:
            terms = self._encoder.documents([r.text for r in records])
            points = [Point(r.id, {"": v, SPARSE_VECTOR: _sparse(t)}, _edge_payload(r))
                      for r, v, t in zip(records, vectors, terms)]
        else:
            points = [Point(r.id, v, _edge_payload(r)) for r, v in zip(records, vectors)]
        self._call("upsert", self.shard.update, UpdateOperation.upsert_points(points))
        self._wrote(len(points))

    async def delete(self, memory_ids: list[str]) -> None:
        ids = [m for m in memory_ids if is_uuid(m)]
        if ids:
            self._call("delete", self.shard.update, UpdateOperation.delete_points(ids))

    def _request(self, mode: SearchMode, vector: list[float] | None, text: str | None, flt: Any, limit: int,
                 threshold: float | None) -> QueryRequest:
        dense = Query.Nearest(vector) if mode != "sparse" else None
        sparse = Query.Nearest(_sparse(self._encoder.query(text)), using=SPARSE_VECTOR) if mode != "dense" else None
        if mode == "hybrid":
            wide = self._fusion.prefetch(limit)
            fusion = Fusion.Dbsf() if self._fusion.method == "dbsf" else Fusion.Rrf(k=self._fusion.rrf_k)
            return QueryRequest(limit=limit, prefetches=[
                Prefetch(limit=wide, query=dense, filter=flt, score_threshold=threshold),
                Prefetch(limit=wide, query=sparse, filter=flt)], query=fusion, with_payload=True, with_vector=False)
        return QueryRequest(limit=limit, query=dense if mode == "dense" else sparse, filter=flt,
                            score_threshold=threshold, with_payload=True, with_vector=False)

    async def search_batch(self, vectors: list[list[float]] | None, *, tenant: str, scope: Scope | None,
                           filters: Expr | None, limit: int, threshold: float | None = None,
                           texts: list[str] | None = None, mode: SearchMode = "dense") -> list[list[Hit]]:
        count = query_count(check_mode(mode), vectors, texts)
        if not count:
            return []
        if mode != "dense" and not self.has_sparse:
            raise InvalidRequest(NO_SPARSE)
        flt = self._filter(tenant, scope, filters)
        requests = [self._request(mode, vectors[i] if vectors is not None else None,
                                  texts[i] if texts is not None else None, flt, limit, threshold)
                    for i in range(count)]
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
