"""The graph store port: entities and relations of one tenant and owner, a projection of the journal.

Every call takes the tenant and the owner and adapters restrict every read to them *inside*
the query (never a global top-k filtered afterwards), so one owner's entity can never be
matched, returned or invalidated on behalf of another.

Relationship names come from LLM text: adapters store them as a property of one fixed edge
label (``RELATES``) and pass every value as a query parameter, so nothing the model says is
ever spliced into Cypher.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import msgspec

from runtime.model import RelationFact, Scope

ENTITY_LABEL = "Entity"
EDGE_LABEL = "RELATES"


class EntityNode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    owner: str
    name: str
    key: str  # the normalized name: what resolution by name compares
    created_at: str = ""


class EntityHit(msgspec.Struct, frozen=True):
    entity: EntityNode
    score: float


class RelationEdge(msgspec.Struct, frozen=True, kw_only=True):
    """An edge as stored: the journal's ``RelationFact`` plus where and when it was written."""

    id: str
    tenant: str
    scope: Scope
    source_id: str
    source: str
    relationship: str
    destination_id: str
    destination: str
    valid_at: str
    invalid_at: str | None = None
    created_at: str = ""
    updated_at: str | None = None
    version: int = 1

    @property
    def owner(self) -> str:
        return self.scope.owner

    def fact(self) -> RelationFact:
        return RelationFact(source_id=self.source_id, source=self.source, relationship=self.relationship,
                            destination_id=self.destination_id, destination=self.destination,
                            valid_at=self.valid_at, invalid_at=self.invalid_at)


class RelationHit(msgspec.Struct, frozen=True):
    relation: RelationEdge
    score: float


class GraphStore(Protocol):
    async def open(self, dims: int) -> None:
        """Create the schema (tables or constraints and indexes) if missing."""
        ...

    async def close(self) -> None: ...

    async def apply(
        self, tenant: str, owner: str, *, entities: list[EntityNode], entity_vectors: list[list[float]],
        relations: list[RelationEdge], relation_vectors: list[list[float]], deleted: list[str],
    ) -> None:
        """Upsert entities (by id) and relations (by id, every property), remove ``deleted`` relations and
        then the owner's entities no relation touches, in one transaction. Re-applying is harmless."""
        ...

    async def entities_by_key(self, tenant: str, owner: str, keys: list[str]) -> list[EntityNode]: ...

    async def similar_entities(self, tenant: str, owner: str, vector: list[float], limit: int) -> list[EntityHit]:
        """The owner's entities nearest to ``vector`` by cosine, best first."""
        ...

    async def relations(
        self, tenant: str, owner: str, *, scope: Scope | None = None, include_invalid: bool = False,
        source_ids: list[str] | None = None, relationships: list[str] | None = None, limit: int = 1000,
        offset: int = 0,
    ) -> list[RelationEdge]:
        """The owner's relations (valid ones unless ``include_invalid``; from ``source_ids`` and of
        ``relationships`` when given), oldest first."""
        ...

    async def search_relations(
        self, tenant: str, owner: str, vector: list[float], *, scope: Scope | None, limit: int,
    ) -> list[RelationHit]:
        """The owner's valid relations ranked by cosine between ``vector`` and the relation's text."""
        ...

    async def count(self, tenant: str, owner: str) -> tuple[int, int]:
        """(entities, relations) of the owner: tests and benchmarks."""
        ...


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


SCOPE_FIELDS = ("user_id", "agent_id", "run_id")


def scope_values(scope: Scope | None) -> dict[str, str]:
    """The scope ids a read is narrowed to (the fields present); names come from SCOPE_FIELDS, never input."""
    if scope is None:
        return {}
    present = scope.fields()
    return {f: present[f] for f in SCOPE_FIELDS if f in present}


# ---- Cypher shared by both adapters (LadybugDB and Memgraph speak the same dialect here) ----
EDGE_COLUMNS = ("r.id, r.tenant, r.user_id, r.agent_id, r.run_id, a.id, a.name, r.relationship, b.id, b.name, "
                "r.valid_at, r.invalid_at, r.created_at, r.updated_at, r.version")


def edge_from_row(row: list[Any]) -> RelationEdge:
    """A relation from the first 15 columns of ``EDGE_COLUMNS``."""
    (rid, tenant, user_id, agent_id, run_id, source_id, source, relationship, destination_id, destination,
     valid_at, invalid_at, created_at, updated_at, version) = row[:15]
    return RelationEdge(id=rid, tenant=tenant, scope=Scope(user_id=user_id, agent_id=agent_id, run_id=run_id),
                        source_id=source_id, source=source, relationship=relationship,
                        destination_id=destination_id, destination=destination, valid_at=valid_at,
                        invalid_at=invalid_at, created_at=created_at or "", updated_at=updated_at,
                        version=int(version or 1))


def scope_where(scope: Scope | None, params: dict[str, Any]) -> str:
    """AND-ed equalities on the scope ids present; the field names are constants, the values parameters."""
    clauses = []
    for field, value in scope_values(scope).items():
        params[f"scope_{field}"] = value
        clauses.append(f" AND r.{field} = $scope_{field}")
    return "".join(clauses)
