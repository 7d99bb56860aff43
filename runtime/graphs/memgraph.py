"""Memgraph over Bolt with the neo4j async driver: the graph store of the cluster preset.

Writes run as managed write transactions (``session.execute_write``), which the driver
retries on transient errors (Memgraph's conflicting-transaction aborts) for up to
``max_retry_time_s``; the unit of work is idempotent (MERGE by id, SET every property), so a
retry is harmless. Constraints and indexes are created at start, each in its own implicit
transaction (Memgraph refuses schema changes inside explicit ones).

Embeddings are stored unit-normalized so that cosine is a dot product Cypher can compute
with ``reduce`` over the owner's nodes only: the ranking is restricted to the owner inside
the query, never a global vector top-k filtered afterwards. Every value is a parameter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from runtime.errors import BackendUnavailable, ConfigError
from runtime.graphs.port import (
    EDGE_COLUMNS,
    EDGE_LABEL,
    ENTITY_LABEL,
    EntityHit,
    EntityNode,
    RelationEdge,
    RelationHit,
    edge_from_row,
    scope_where,
)
from runtime.model import Scope

log = structlog.get_logger("memstream.graph")
T = TypeVar("T")

SCHEMA = (
    f"CREATE CONSTRAINT ON (e:{ENTITY_LABEL}) ASSERT e.id IS UNIQUE",
    f"CREATE CONSTRAINT ON (e:{ENTITY_LABEL}) ASSERT e.tenant, e.owner, e.key IS UNIQUE",
    f"CREATE INDEX ON :{ENTITY_LABEL}(id)",
    f"CREATE INDEX ON :{ENTITY_LABEL}(owner)",
)
# edge-property indexes arrived in later Memgraph versions: useful, not required
OPTIONAL_SCHEMA = (f"CREATE EDGE INDEX ON :{EDGE_LABEL}(id)", f"CREATE EDGE INDEX ON :{EDGE_LABEL}(owner)")

_DOT = "reduce(s = 0.0, i IN range(0, size($vector) - 1) | s + {prop}[i] * $vector[i])"


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [float(x) / norm for x in vector] if norm else [float(x) for x in vector]


class MemgraphGraphStore:
    def __init__(self, url: str | None, *, username: str = "", password_env: str = "MEMGRAPH_PASSWORD",
                 max_pool_size: int = 32, timeout_s: float = 10.0, max_retry_time_s: float = 15.0):
        url = url or os.environ.get("MEMSTREAM_MEMGRAPH_URL")
        if not url:
            raise ConfigError("graph_store.url is not set (nor MEMSTREAM_MEMGRAPH_URL): where is Memgraph? "
                              "e.g. bolt://127.0.0.1:7687")
        self.url = url
        self._auth = (username, os.environ.get(password_env, ""))
        self._pool = max_pool_size
        self._timeout_s = timeout_s
        self._retry_s = max_retry_time_s
        self._driver: Any = None

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        import neo4j.exceptions as nx

        if self._driver is None:
            raise BackendUnavailable("the Memgraph graph store is not open", backend="graph_store")
        try:
            return await call()
        except (nx.ServiceUnavailable, nx.SessionExpired, nx.TransientError, OSError) as exc:
            raise BackendUnavailable(f"Memgraph at {self.url}: {exc}", backend="graph_store") from exc
        except nx.Neo4jError as exc:  # a statement Memgraph refused: still the store's failure, typed
            raise BackendUnavailable(f"Memgraph refused a statement: {exc}", backend="graph_store") from exc

    async def _read(self, statement: str, params: dict[str, Any]) -> list[list[Any]]:
        async def work(tx: Any) -> list[list[Any]]:
            result = await tx.run(statement, params)
            return [list(values) for values in await result.values()]

        async def call() -> list[list[Any]]:
            async with self._driver.session() as session:
                return await session.execute_read(work)

        return await self._guard(call)

    async def _write(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        async def work(tx: Any) -> None:
            for statement, params in statements:
                result = await tx.run(statement, params)
                await result.consume()

        async def call() -> None:
            async with self._driver.session() as session:
                await session.execute_write(work)

        await self._guard(call)

    async def open(self, dims: int) -> None:
        if self._driver is not None:
            return
        import neo4j
        import neo4j.exceptions as nx

        self._driver = neo4j.AsyncGraphDatabase.driver(
            self.url, auth=self._auth, max_connection_pool_size=self._pool, connection_timeout=self._timeout_s,
            max_transaction_retry_time=self._retry_s)
        try:
            await self._guard(self._driver.verify_connectivity)
        except BackendUnavailable:
            await self.close()
            raise

        async def ddl(statement: str) -> None:
            async with self._driver.session() as session:
                result = await session.run(statement)
                await result.consume()

        for statement, required in [(s, True) for s in SCHEMA] + [(s, False) for s in OPTIONAL_SCHEMA]:
            try:
                await self._guard(lambda s=statement: ddl(s))
            except BackendUnavailable as exc:
                cause = exc.__cause__
                if isinstance(cause, nx.Neo4jError) and "exist" in str(cause).lower():
                    continue  # created by an earlier start or another shard
                if required:
                    raise
                log.warning("memgraph_optional_index_skipped", statement=statement, reason=str(cause))

    async def close(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()

    async def apply(
        self, tenant: str, owner: str, *, entities: list[EntityNode], entity_vectors: list[list[float]],
        relations: list[RelationEdge], relation_vectors: list[list[float]], deleted: list[str],
    ) -> None:
        scope = {"tenant": tenant, "owner": owner}
        statements: list[tuple[str, dict[str, Any]]] = []
        if deleted:
            # removals first: a pruned entity's key may be taken again by an entity of this batch
            statements.append((f"UNWIND $ids AS rid MATCH (:{ENTITY_LABEL})-[r:{EDGE_LABEL} {{id: rid}}]->() "
                               "WHERE r.tenant = $tenant AND r.owner = $owner DELETE r", {"ids": deleted, **scope}))
            statements.append((f"MATCH (e:{ENTITY_LABEL} {{owner: $owner}}) WHERE e.tenant = $tenant "
                               f"OPTIONAL MATCH (e)-[r:{EDGE_LABEL}]-() WITH e, count(r) AS degree "
                               "WHERE degree = 0 DELETE e", scope))
        if entities:
            rows = [{"id": e.id, "tenant": e.tenant, "owner": e.owner, "name": e.name, "key": e.key,
                     "created_at": e.created_at, "embedding": unit(v)} for e, v in zip(entities, entity_vectors)]
            statements.append((f"UNWIND $rows AS row MERGE (e:{ENTITY_LABEL} {{id: row.id}}) "
                               "ON CREATE SET e.created_at = row.created_at "
                               "SET e.tenant = row.tenant, e.owner = row.owner, e.name = row.name, e.key = row.key, "
                               "e.embedding = row.embedding", {"rows": rows}))
        if relations:
            rows = [{"id": r.id, "tenant": r.tenant, "owner": r.owner, "user_id": r.scope.user_id,
                     "agent_id": r.scope.agent_id, "run_id": r.scope.run_id, "source_id": r.source_id,
                     "destination_id": r.destination_id, "relationship": r.relationship, "valid_at": r.valid_at,
                     "invalid_at": r.invalid_at, "created_at": r.created_at, "updated_at": r.updated_at,
                     "version": r.version, "embedding": unit(v)} for r, v in zip(relations, relation_vectors)]
            statements.append((f"UNWIND $rows AS row MATCH (a:{ENTITY_LABEL} {{id: row.source_id}}) "
                               f"MATCH (b:{ENTITY_LABEL} {{id: row.destination_id}}) "
                               f"MERGE (a)-[r:{EDGE_LABEL} {{id: row.id}}]->(b) "
                               "SET r.tenant = row.tenant, r.owner = row.owner, r.user_id = row.user_id, "
                               "r.agent_id = row.agent_id, r.run_id = row.run_id, r.relationship = row.relationship, "
                               "r.valid_at = row.valid_at, r.invalid_at = row.invalid_at, "
                               "r.created_at = row.created_at, r.updated_at = row.updated_at, "
                               "r.version = row.version, r.embedding = row.embedding", {"rows": rows}))
        if statements:
            await self._write(statements)

    async def entities_by_key(self, tenant: str, owner: str, keys: list[str]) -> list[EntityNode]:
        if not keys:
            return []
        rows = await self._read(
            f"MATCH (e:{ENTITY_LABEL} {{owner: $owner}}) WHERE e.tenant = $tenant AND e.key IN $keys "
            "RETURN e.id, e.name, e.key, e.created_at", {"tenant": tenant, "owner": owner, "keys": list(keys)})
        return [EntityNode(id=i, tenant=tenant, owner=owner, name=n, key=k, created_at=c or "") for i, n, k, c in rows]

    async def similar_entities(self, tenant: str, owner: str, vector: list[float], limit: int) -> list[EntityHit]:
        rows = await self._read(
            f"MATCH (e:{ENTITY_LABEL} {{owner: $owner}}) WHERE e.tenant = $tenant "
            f"WITH e, {_DOT.format(prop='e.embedding')} AS score "
            "RETURN e.id, e.name, e.key, e.created_at, score ORDER BY score DESC LIMIT $limit",
            {"tenant": tenant, "owner": owner, "vector": unit(vector), "limit": int(limit)})
        return [EntityHit(EntityNode(id=i, tenant=tenant, owner=owner, name=n, key=k, created_at=c or ""), float(s))
                for i, n, k, c, s in rows]

    async def relations(
        self, tenant: str, owner: str, *, scope: Scope | None = None, include_invalid: bool = False,
        source_ids: list[str] | None = None, relationships: list[str] | None = None, limit: int = 1000,
        offset: int = 0,
    ) -> list[RelationEdge]:
        params: dict[str, Any] = {"tenant": tenant, "owner": owner, "limit": int(limit), "skip": int(offset)}
        where = "r.tenant = $tenant AND r.owner = $owner" + scope_where(scope, params)
        if not include_invalid:
            where += " AND r.invalid_at IS NULL"
        if source_ids is not None:
            params["sources"] = list(source_ids)
            where += " AND a.id IN $sources"
        if relationships is not None:
            params["relationships"] = list(relationships)
            where += " AND r.relationship IN $relationships"
        rows = await self._read(
            f"MATCH (a:{ENTITY_LABEL} {{owner: $owner}})-[r:{EDGE_LABEL}]->(b:{ENTITY_LABEL}) WHERE {where} "
            f"RETURN {EDGE_COLUMNS} ORDER BY r.created_at, r.id SKIP $skip LIMIT $limit", params)
        return [edge_from_row(row) for row in rows]

    async def search_relations(
        self, tenant: str, owner: str, vector: list[float], *, scope: Scope | None, limit: int,
    ) -> list[RelationHit]:
        params: dict[str, Any] = {"tenant": tenant, "owner": owner, "limit": int(limit), "vector": unit(vector)}
        where = "r.tenant = $tenant AND r.owner = $owner AND r.invalid_at IS NULL" + scope_where(scope, params)
        rows = await self._read(
            f"MATCH (a:{ENTITY_LABEL} {{owner: $owner}})-[r:{EDGE_LABEL}]->(b:{ENTITY_LABEL}) WHERE {where} "
            f"WITH a, r, b, {_DOT.format(prop='r.embedding')} AS score "
            f"RETURN {EDGE_COLUMNS}, score ORDER BY score DESC LIMIT $limit", params)
        return [RelationHit(edge_from_row(row), float(row[15])) for row in rows]

    async def count(self, tenant: str, owner: str) -> tuple[int, int]:
        params = {"tenant": tenant, "owner": owner}
        [[nodes]] = await self._read(f"MATCH (e:{ENTITY_LABEL} {{owner: $owner}}) WHERE e.tenant = $tenant "
                                     "RETURN count(e)", params)
        [[edges]] = await self._read(f"MATCH ()-[r:{EDGE_LABEL}]->() WHERE r.tenant = $tenant AND r.owner = $owner "
                                     "RETURN count(r)", params)
        return int(nodes), int(edges)

    async def drop(self, tenant: str) -> None:
        """Remove every node and edge of a tenant (tests only)."""
        await self._write([(f"MATCH (e:{ENTITY_LABEL}) WHERE e.tenant = $tenant DETACH DELETE e",
                            {"tenant": tenant})])
