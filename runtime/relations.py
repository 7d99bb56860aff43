"""The pure decision core of graph memory: LLM triples -> checked triples -> resolved entities ->
journal drafts (added, invalidated, deleted relations).

No I/O: the engine fetches the candidates (entities with the same name, the nearest entities
of the same owner, the owner's current relations) and this module decides, so the rules are
tested without a graph store, an LLM or an event loop.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from runtime.errors import LLMOutputError
from runtime.graphs.port import EntityHit, EntityNode, RelationEdge
from runtime.model import EntryDraft, JournalEntry, RelationFact, Scope
from runtime.reconcile import _load, is_grounded

# how the user names themself in the first person: all of it maps to the owner's entity
OWNER_WORDS = frozenset({"i", "me", "my", "myself", "mine", "user", "the user", "i am", "i'm"})
# a relationship is a snake_case identifier: the only shape that ever reaches a store
RELATIONSHIP = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
# the same relation said differently: one name, so contradictions are found
ALIASES = {
    "live_in": "lives_in", "move_to": "lives_in", "work_at": "works_at", "work_for": "works_at",
    "work_as": "works_as", "moved_to": "lives_in", "lives_at": "lives_in", "resides_in": "lives_in",
    "living_in": "lives_in",
    "relocated_to": "lives_in", "works_for": "works_at", "employed_by": "works_at", "employed_at": "works_at",
    "job_is": "works_as", "is_called": "is_named", "name_is": "is_named", "named": "is_named",
    "has_name": "is_named", "married_to": "is_married_to", "has_dog": "has_pet", "has_cat": "has_pet",
}


class Triple(msgspec.Struct, frozen=True):
    source: str
    relationship: str
    destination: str
    ended: bool = False


def owner_name(owner: str) -> str:
    """The owner's entity name: the id after the kind prefix ("user:alice" -> "alice")."""
    return owner.partition(":")[2] or owner


def clean_name(raw: Any, max_chars: int) -> str | None:
    """Display form of an entity name, or None if it is not one (empty, too long, not text)."""
    if not isinstance(raw, str):
        return None
    name = " ".join(unicodedata.normalize("NFKC", raw).split()).strip(" .,;:!?\"'`")
    if not name or len(name) > max_chars or not any(ch.isalnum() for ch in name):
        return None
    return name


def name_key(name: str) -> str:
    """What resolution by name compares: case, spacing and punctuation do not make a new entity."""
    return " ".join(re.sub(r"[^\w]+", " ", name.casefold()).split())


def clean_relationship(raw: Any) -> str | None:
    """snake_case and whitelisted by shape, or None: the model's text never reaches a query as syntax."""
    if not isinstance(raw, str):
        return None
    ascii_only = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    rel = _NOT_WORD.sub("_", ascii_only).strip("_")
    rel = ALIASES.get(rel, rel)
    return rel if RELATIONSHIP.match(rel) else None


def parse_relations(raw: Any, *, owner: str, max_items: int, max_chars: int,
                    conversation: str | None = None) -> list[Triple]:
    """Validate ``{"relations": [...]}``: a malformed answer is an error (retried); a bad item is dropped.
    The user's "I/me" becomes the owner's entity; a name absent from the conversation is invented and dropped."""
    data = _load(raw)
    if not isinstance(data, dict) or not isinstance(data.get("relations"), list):
        raise LLMOutputError('LLM output must be an object {"relations": [{"source", "relationship", '
                             '"destination"}, ...]}')
    me = owner_name(owner)
    triples: list[Triple] = []
    seen: set[tuple[str, str, str]] = set()
    for item in data["relations"]:
        if not isinstance(item, dict):
            raise LLMOutputError("every relation must be an object")
        ends = []
        for field in ("source", "destination"):
            name = clean_name(item.get(field), max_chars)
            if name is not None and name.casefold() in OWNER_WORDS:
                name = me
            elif name is not None and conversation is not None and not is_grounded(name, conversation):
                name = None
            ends.append(name)
        relationship = clean_relationship(item.get("relationship"))
        source, destination = ends
        if source is None or destination is None or relationship is None or name_key(source) == name_key(destination):
            continue
        key = (name_key(source), relationship, name_key(destination))
        if key in seen:
            continue
        seen.add(key)
        triples.append(Triple(source, relationship, destination, ended=item.get("ended") is True))
    return triples[:max_items]


def said_text(triple: Triple) -> str:
    """The relation's text with the names as said (``RelationFact.text`` once they are resolved)."""
    return f"{triple.source} {triple.relationship.replace('_', ' ')} {triple.destination}"


def names_of(triples: Iterable[Triple]) -> dict[str, str]:
    """key -> display name of every entity the triples mention, first spelling wins."""
    names: dict[str, str] = {}
    for t in triples:
        for name in (t.source, t.destination):
            names.setdefault(name_key(name), name)
    return names


def resolve_entities(
    names: dict[str, str], *, tenant: str, owner: str, exact: list[EntityNode], similar: dict[str, list[EntityHit]],
    threshold: float, now: str, new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> dict[str, EntityNode]:
    """key -> the entity each name is: the owner's entity with that name, else the owner's nearest
    entity if it is close enough, else a new one. Candidates of another tenant or owner are ignored
    even if a store hands them over."""
    mine = [e for e in exact if e.tenant == tenant and e.owner == owner]
    by_key = {e.key: e for e in mine}
    resolved: dict[str, EntityNode] = {}
    for key, name in names.items():
        if key in by_key:
            resolved[key] = by_key[key]
            continue
        hits = [h for h in similar.get(key, []) if h.entity.tenant == tenant and h.entity.owner == owner]
        best = max(hits, key=lambda h: h.score, default=None)
        if best is not None and best.score >= threshold:
            resolved[key] = best.entity
        else:
            resolved[key] = EntityNode(id=new_id(), tenant=tenant, owner=owner, name=name, key=key, created_at=now)
    return resolved


def _added(fact: RelationFact, *, scope: Scope, tenant: str, now: str, cause: str | None) -> EntryDraft:
    return EntryDraft(id=str(uuid.uuid4()), memory_id=str(uuid.uuid4()), event="ADD", old_memory=None,
                      new_memory=fact.text(), scope=scope, tenant=tenant, created_at=now, cause=cause,
                      kind="relation", relation=fact)


def invalidate_entry(edge: RelationEdge, now: str, cause: str | None) -> EntryDraft:
    """The edge stays, with ``invalid_at``: the graph remembers what used to be true."""
    fact = msgspec.structs.replace(edge.fact(), invalid_at=now)
    return EntryDraft(id=str(uuid.uuid4()), memory_id=edge.id, event="UPDATE", old_memory=fact.text(),
                      new_memory=fact.text(), scope=edge.scope, tenant=edge.tenant, created_at=edge.created_at,
                      updated_at=now, cause=cause, version=edge.version + 1, kind="relation", relation=fact)


def delete_entry(edge: RelationEdge, now: str, cause: str | None) -> EntryDraft:
    return EntryDraft(id=str(uuid.uuid4()), memory_id=edge.id, event="DELETE", old_memory=edge.fact().text(),
                      new_memory=None, scope=edge.scope, tenant=edge.tenant, created_at=edge.created_at,
                      updated_at=now, cause=cause, version=edge.version + 1, kind="relation", relation=edge.fact())


def plan_relations(
    triples: list[Triple], entities: dict[str, EntityNode], current: list[RelationEdge], *,
    exclusive: Iterable[str], scope: Scope, tenant: str, now: str, cause: str | None,
) -> list[EntryDraft]:
    """What the turn changes in the graph, given the owner's valid relations:

    - a relation already valid is not added twice;
    - an ``ended`` relation invalidates the matching valid one and adds nothing;
    - a relation of an exclusive kind (one value at a time: lives_in, works_at...) invalidates the
      source's valid relations of that kind to another destination;
    - invalidated relations are kept with ``invalid_at``, never deleted.
    """
    exclusive = frozenset(exclusive)
    valid = [e for e in current if e.invalid_at is None and e.tenant == tenant and e.owner == scope.owner]
    invalidations: dict[str, EntryDraft] = {}
    additions: dict[tuple[str, str, str], RelationFact] = {}

    def invalidate(edge: RelationEdge) -> None:
        invalidations.setdefault(edge.id, invalidate_entry(edge, now, cause))

    for triple in triples:
        source = entities[name_key(triple.source)]
        destination = entities[name_key(triple.destination)]
        same = [e for e in valid if e.source_id == source.id and e.relationship == triple.relationship]
        if triple.ended:
            for edge in same:
                if edge.destination_id == destination.id:
                    invalidate(edge)
            continue
        if any(e.destination_id == destination.id and e.id not in invalidations for e in same):
            continue  # already known
        if triple.relationship in exclusive:
            for edge in same:
                if edge.destination_id != destination.id:
                    invalidate(edge)
            # a second value of an exclusive relation in the same turn replaces the first
            for key in [k for k in additions if k[:2] == (source.id, triple.relationship)]:
                del additions[key]
        additions.setdefault((source.id, triple.relationship, destination.id), RelationFact(
            source_id=source.id, source=source.name, relationship=triple.relationship,
            destination_id=destination.id, destination=destination.name, valid_at=now))
    added = [_added(fact, scope=scope, tenant=tenant, now=now, cause=cause) for fact in additions.values()]
    return [*invalidations.values(), *added]


def relation_dict(relation_id: str, fact: RelationFact, score: float | None = None) -> dict[str, Any]:
    """Mem0's relation shape (source, relationship, destination) plus ids and validity."""
    out: dict[str, Any] = {"id": relation_id, "source": fact.source, "relationship": fact.relationship,
                           "destination": fact.destination, "valid_at": fact.valid_at, "invalid_at": fact.invalid_at}
    if score is not None:
        out["score"] = score
    return out


def change_dict(draft: EntryDraft) -> dict[str, Any]:
    """A relation change as ``add`` reports it."""
    assert draft.relation is not None
    event = {"ADD": "ADD", "UPDATE": "INVALIDATE"}.get(draft.event, "DELETE")
    return {**relation_dict(draft.memory_id, draft.relation), "event": event}


def edge_of(entry: JournalEntry) -> RelationEdge:
    """A relation's journal entry as the graph store holds it (its state after that entry)."""
    fact = entry.relation
    assert fact is not None
    return RelationEdge(id=entry.memory_id, tenant=entry.tenant, scope=entry.scope, source_id=fact.source_id,
                        source=fact.source, relationship=fact.relationship, destination_id=fact.destination_id,
                        destination=fact.destination, valid_at=fact.valid_at, invalid_at=fact.invalid_at,
                        created_at=entry.created_at, updated_at=entry.updated_at, version=entry.version)
