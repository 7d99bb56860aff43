"""A Qdrant server or cluster through ``AsyncQdrantClient``.

One collection for all tenants (Qdrant's multitenancy guidance): ``owner`` is a keyword
index with ``is_tenant=true`` so Qdrant co-locates each owner's points, ``tenant`` and the
scope ids are keyword indexes, and every write waits for the write to be applied.
Very large tenants can have shards of their own (``dedicated_tenants``): the collection then
uses Qdrant's user-defined sharding, with a ``shared`` shard key for every other tenant, and every
call names its tenant's key so it touches only those shards.
``location=":memory:"`` runs qdrant-client's in-process mode; it is slow (hundreds of ms per
filtered search at 20k points) and only meant for tests.
Beside the unnamed dense vector each point has the ``bm25`` sparse vector (IDF modifier, so the
server keeps document frequencies); a hybrid search is one ``query_points`` with a dense and a
sparse prefetch fused by RRF (or DBSF). A collection from before sparse vectors gets the vector
added in place (``create_vector_name``) by ``add_sparse_slot``.
"""

from __future__ import annotations

import os
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from runtime.errors import BackendUnavailable, InvalidRequest
from runtime.filters import Expr
from runtime.model import MemoryRecord, Scope
from runtime.vectors import qdrant_filter
from runtime.vectors.hybrid import NO_SPARSE, FusionSettings, SearchMode, check_mode, query_count
from runtime.vectors.port import INDEXED_KEYWORDS, Hit, SearchOne, from_payload, is_uuid, to_payload
from runtime.vectors.sparse import SPARSE_VECTOR, SparseEncoder, SparseTerms


class ClientDialect:
    """qdrant-client's pydantic models."""

    def equals(self, key: str, value: Any) -> Any:
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))

    def any_of(self, key: str, values: list[Any]) -> Any:
        return models.FieldCondition(key=key, match=models.MatchAny(any=values))

    def range(self, key: str, **bounds: float) -> Any:
        return models.FieldCondition(key=key, range=models.Range(**bounds))

    def substring(self, key: str, text: str) -> Any:
        return models.FieldCondition(key=key, match=models.MatchSubstring(substring=text))

    def is_empty(self, key: str) -> Any:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))

    def filter(self, must: list[Any] | None = None, should: list[Any] | None = None,
               must_not: list[Any] | None = None) -> Any:
        return models.Filter(must=must, should=should, must_not=must_not)


_DIALECT = ClientDialect()


def build_filter(tenant: str, scope: Scope | None, filters: Expr | None) -> models.Filter:
    return qdrant_filter.build_filter(_DIALECT, tenant, scope, filters)


SHARED_SHARD_KEY = "shared"
SPARSE_PARAMS = models.SparseVectorParams(modifier=models.Modifier.IDF)
QDRANT_DEFAULT_RRF_K = 2  # a plain FusionQuery(RRF) uses it, and servers before parametrised RRF know only that


def _sparse(terms: SparseTerms) -> models.SparseVector:
    return models.SparseVector(indices=terms.indices, values=terms.values)


def fusion_query(fusion: FusionSettings) -> Any:
    if fusion.method == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    if fusion.rrf_k == QDRANT_DEFAULT_RRF_K:
        return models.FusionQuery(fusion=models.Fusion.RRF)
    return models.RrfQuery(rrf=models.Rrf(k=fusion.rrf_k))


def shard_key_for(tenant: str, dedicated: frozenset[str]) -> str | None:
    """The shard key a tenant's points live under; None when the collection is not custom-sharded."""
    if not dedicated:
        return None
    return f"tenant:{tenant}" if tenant in dedicated else SHARED_SHARD_KEY


class QdrantVectorStore(SearchOne):
    def __init__(self, *, url: str | None = None, location: str | None = None, api_key_env: str = "QDRANT_API_KEY",
                 collection: str = "memstream", shard_number: int = 1, replication_factor: int = 1,
                 write_consistency_factor: int = 1, on_disk_payload: bool = True, timeout_s: float = 10.0,
                 dedicated_tenants: list[str] | None = None, dedicated_shard_number: int = 1,
                 sparse: SparseEncoder | None = None, fusion: FusionSettings | None = None):
        if url:
            self._client = AsyncQdrantClient(url=url, api_key=os.environ.get(api_key_env), timeout=int(timeout_s),
                                             check_compatibility=False)  # open() probes the server itself
        else:
            self._client = AsyncQdrantClient(location=location or ":memory:")
        self.collection = collection
        self._shard_number = shard_number
        self._replication_factor = replication_factor
        self._write_consistency_factor = write_consistency_factor
        self._on_disk_payload = on_disk_payload
        self._local = not url
        self._dedicated = frozenset(dedicated_tenants or ())
        self._dedicated_shard_number = dedicated_shard_number
        self._encoder = sparse or SparseEncoder()
        self._fusion = fusion or FusionSettings()
        self.has_sparse = False
        self.flush_every: int | None = None  # the server's own WAL makes each acknowledged upsert durable

    def _key(self, tenant: str) -> str | None:
        return shard_key_for(tenant, self._dedicated)

    async def _call(self, coroutine: Any) -> Any:
        try:
            return await coroutine
        except (ResponseHandlingException, UnexpectedResponse, ConnectionError, TimeoutError) as exc:
            raise BackendUnavailable(f"Qdrant: {exc}", backend="vector_store") from exc

    async def open(self, dims: int) -> None:
        if await self._call(self._client.collection_exists(self.collection)):
            await self._create_shard_keys(existing=True)
            info = await self._call(self._client.get_collection(self.collection))
            self.has_sparse = SPARSE_VECTOR in (info.config.params.sparse_vectors or {})
            return
        custom = bool(self._dedicated)
        await self._call(self._client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=dims, distance=models.Distance.COSINE),
            sparse_vectors_config={SPARSE_VECTOR: SPARSE_PARAMS},
            shard_number=None if custom else self._shard_number,
            sharding_method=models.ShardingMethod.CUSTOM if custom else None,
            replication_factor=self._replication_factor,
            write_consistency_factor=self._write_consistency_factor,
            on_disk_payload=self._on_disk_payload,
            hnsw_config=models.HnswConfigDiff(payload_m=16, m=0),
        ))
        self.has_sparse = True
        await self._create_shard_keys(existing=False)
        if self._local:
            return  # qdrant-client's local mode has no payload indexes (and warns about them)
        for field in INDEXED_KEYWORDS:
            schema: Any = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD,
                                                    is_tenant=field == "owner")
            await self._call(self._client.create_payload_index(self.collection, field, field_schema=schema,
                                                               wait=True))

    async def _create_shard_keys(self, *, existing: bool) -> None:
        """One key for the shared tenants and one per dedicated tenant; a key added to the config
        later is created on the next start (points written before stay under ``shared``)."""
        if not self._dedicated or self._local:  # the local mode has no sharding (it ignores the keys)
            return
        keys = [(SHARED_SHARD_KEY, self._shard_number)]
        keys += [(f"tenant:{t}", self._dedicated_shard_number) for t in sorted(self._dedicated)]
        for key, shards in keys:
            try:
                await self._client.create_shard_key(self.collection, key, shards_number=shards,
                                                    replication_factor=self._replication_factor)
            except UnexpectedResponse as exc:
                if not (existing and "already exists" in str(exc)):
                    raise BackendUnavailable(f"Qdrant: creating shard key {key!r}: {exc}",
                                             backend="vector_store") from exc

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.close()

    async def upsert(self, records: list[MemoryRecord], vectors: list[list[float]]) -> None:
        if not records:
            return
        by_key: dict[str | None, list[models.PointStruct]] = {}
        terms = self._encoder.documents([r.text for r in records]) if self.has_sparse else [None] * len(records)
        for record, vector, sparse in zip(records, vectors, terms):
            named: Any = vector if sparse is None else {"": vector, SPARSE_VECTOR: _sparse(sparse)}
            point = models.PointStruct(id=record.id, vector=named, payload=to_payload(record))
            by_key.setdefault(self._key(record.tenant), []).append(point)
        for key, points in by_key.items():
            await self._call(self._client.upsert(self.collection, points=points, wait=True, shard_key_selector=key))

    async def delete(self, memory_ids: list[str]) -> None:
        """By id alone: without a shard key Qdrant looks in every shard."""
        if memory_ids:
            await self._call(self._client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(memory_ids)), wait=True))

    async def add_sparse_slot(self) -> bool:
        if self.has_sparse:
            return False
        await self._call(self._client.create_vector_name(
            self.collection, SPARSE_VECTOR, models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)), wait=True))
        self.has_sparse = True
        return True

    async def write_sparse(self, records: list[MemoryRecord]) -> int:
        if not self.has_sparse:
            raise InvalidRequest(NO_SPARSE)
        written = 0
        by_key: dict[str | None, list[MemoryRecord]] = {}
        for record in records:
            if is_uuid(record.id):
                by_key.setdefault(self._key(record.tenant), []).append(record)
        for key, group in by_key.items():
            stored = {str(p.id) for p in await self._call(self._client.retrieve(
                self.collection, ids=[r.id for r in group], with_payload=False, shard_key_selector=key))}
            present = [r for r in group if r.id in stored]
            if not present:
                continue
            terms = self._encoder.documents([r.text for r in present])
            await self._call(self._client.update_vectors(self.collection, points=[
                models.PointVectors(id=r.id, vector={SPARSE_VECTOR: _sparse(t)}) for r, t in zip(present, terms)],
                wait=True, shard_key_selector=key))
            written += len(present)
        return written

    def _request(self, mode: SearchMode, vector: list[float] | None, text: str | None, flt: models.Filter,
                 limit: int, threshold: float | None, key: str | None) -> models.QueryRequest:
        if mode == "dense":
            return models.QueryRequest(query=vector, filter=flt, limit=limit, score_threshold=threshold,
                                       with_payload=True, shard_key=key)
        sparse = _sparse(self._encoder.query(text or ""))
        if mode == "sparse":
            return models.QueryRequest(query=sparse, using=SPARSE_VECTOR, filter=flt, limit=limit,
                                       score_threshold=threshold, with_payload=True, shard_key=key)
        wide = self._fusion.prefetch(limit)
        return models.QueryRequest(prefetch=[
            models.Prefetch(query=vector, filter=flt, limit=wide, score_threshold=threshold),
            models.Prefetch(query=sparse, using=SPARSE_VECTOR, filter=flt, limit=wide)],
            query=fusion_query(self._fusion), limit=limit, with_payload=True, shard_key=key)

    async def search_batch(self, vectors: list[list[float]] | None, *, tenant: str, scope: Scope | None,
                           filters: Expr | None, limit: int, threshold: float | None = None,
                           texts: list[str] | None = None, mode: SearchMode = "dense") -> list[list[Hit]]:
        count = query_count(check_mode(mode), vectors, texts)
        if not count:
            return []
        if mode != "dense" and not self.has_sparse:
            raise InvalidRequest(NO_SPARSE)
        flt, key = build_filter(tenant, scope, filters), self._key(tenant)
        requests = [self._request(mode, vectors[i] if vectors is not None else None,
                                  texts[i] if texts is not None else None, flt, limit, threshold, key)
                    for i in range(count)]
        responses = await self._call(self._client.query_batch_points(self.collection, requests=requests))
        return [[Hit(from_payload(str(p.id), p.payload or {}), float(p.score)) for p in response.points]
                for response in responses]

    async def get(self, tenant: str, memory_ids: list[str]) -> list[MemoryRecord]:
        valid = [m for m in memory_ids if is_uuid(m)]
        if not valid:
            return []
        points = await self._call(self._client.retrieve(self.collection, ids=valid, with_payload=True,
                                                        shard_key_selector=self._key(tenant)))
        records = [from_payload(str(p.id), p.payload or {}) for p in points]
        return [r for r in records if r.tenant == tenant]

    async def list(self, *, tenant: str, scope: Scope | None, filters: Expr | None, limit: int,
                   offset: int = 0) -> list[MemoryRecord]:
        wanted, records, cursor = offset + limit, [], None
        while len(records) < wanted:
            points, cursor = await self._call(self._client.scroll(
                self.collection, scroll_filter=build_filter(tenant, scope, filters),
                limit=min(wanted - len(records), 1000), offset=cursor, with_payload=True, with_vectors=False,
                shard_key_selector=self._key(tenant),
            ))
            records.extend(from_payload(str(p.id), p.payload or {}) for p in points)
            if cursor is None:
                break
        return records[offset:wanted]

    async def count(self, *, tenant: str, scope: Scope | None, filters: Expr | None) -> int:
        result = await self._call(self._client.count(
            self.collection, count_filter=build_filter(tenant, scope, filters), exact=True,
            shard_key_selector=self._key(tenant)))
        return int(result.count)

