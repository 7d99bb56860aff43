"""The data model shared by the engine, the actors and the wire protocol.

Everything here is a msgspec Struct: cheap to encode as JSON or MessagePack, cheap to
ship between Ray processes, and validated on decode.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec

from runtime.errors import InvalidRequest

DEFAULT_TENANT = "default"
EventKind = Literal["ADD", "UPDATE", "DELETE"]
DecisionKind = Literal["ADD", "UPDATE", "DELETE", "NONE"]
# What a journal entry is about. Old entries carry no kind and decode as memories.
EntryKind = Literal["memory", "relation"]


class Scope(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who a memory belongs to. The owner key (user, else agent, else run) picks the mailbox."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        ids = (self.user_id, self.agent_id, self.run_id)
        if not any(ids):
            raise InvalidRequest("a scope needs at least one of user_id, agent_id, run_id")
        for name, value in zip(("user_id", "agent_id", "run_id"), ids):
            if value is not None and (not isinstance(value, str) or len(value) > 256):
                raise InvalidRequest(f"{name} must be a string of at most 256 characters")

    @property
    def owner(self) -> str:
        """Owner key; prefixed so that user 'x' and agent 'x' never share a sequence."""
        if self.user_id:
            return f"user:{self.user_id}"
        if self.agent_id:
            return f"agent:{self.agent_id}"
        return f"run:{self.run_id}"

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v}

    def broader(self) -> list[Scope]:
        """This scope, then the agent-level, then the user-level scope (hierarchical search)."""
        chain = [self]
        if self.run_id and (self.agent_id or self.user_id):
            chain.append(Scope(user_id=self.user_id, agent_id=self.agent_id))
        if self.agent_id and self.user_id:
            chain.append(Scope(user_id=self.user_id))
        return chain


def make_scope(user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None) -> Scope:
    return Scope(user_id=user_id or None, agent_id=agent_id or None, run_id=run_id or None)


def text_hash(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class MemoryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A memory as it stands after a journal entry; what stores and reads return."""

    id: str
    text: str
    scope: Scope
    tenant: str = DEFAULT_TENANT
    metadata: dict[str, Any] = {}
    hash: str = ""
    created_at: str = ""
    updated_at: str | None = None
    version: int = 1
    actor_id: str | None = None
    role: str | None = None


class RelationFact(msgspec.Struct, frozen=True, kw_only=True):
    """A graph edge as a journal entry leaves it: source -relationship-> destination, with the
    entity ids it was resolved to. Every entry carries the whole edge (not a delta), so the
    graph projection and ``as_of`` replay keep the last state per relation id."""

    source_id: str
    source: str
    relationship: str  # validated snake_case; stored as a property, never as a Cypher label
    destination_id: str
    destination: str
    valid_at: str
    invalid_at: str | None = None

    def text(self) -> str:
        return f"{self.source} {self.relationship.replace('_', ' ')} {self.destination}"


class EntryDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A journal entry before the journal gives it its sequence number.

    ``kind="relation"`` entries share the owner's seq with memory entries: ``memory_id`` holds
    the relation id, ``event`` is ADD (added), UPDATE (invalidated) or DELETE (cleared), and
    ``relation`` the edge."""

    id: str
    memory_id: str
    event: EventKind
    old_memory: str | None
    new_memory: str | None
    scope: Scope
    tenant: str
    metadata: dict[str, Any] = {}
    created_at: str
    updated_at: str | None = None
    actor_id: str | None = None
    role: str | None = None
    cause: str | None = None
    version: int = 1
    hash: str | None = None
    kind: EntryKind = "memory"
    relation: RelationFact | None = None


class JournalEntry(EntryDraft, frozen=True, kw_only=True):
    """One row of the history log (a superset of Mem0's history table). ``seq`` is per owner."""

    seq: int
    is_deleted: bool = False
    ts: float = 0.0

    @property
    def owner(self) -> str:
        return self.scope.owner

    def record(self) -> MemoryRecord:
        """The memory as this entry leaves it (meaningless for DELETE)."""
        return MemoryRecord(
            id=self.memory_id,
            text=self.new_memory or "",
            scope=self.scope,
            tenant=self.tenant,
            metadata=self.metadata,
            hash=self.hash or text_hash(self.new_memory or ""),
            created_at=self.created_at,
            updated_at=self.updated_at,
            version=self.version,
            actor_id=self.actor_id,
            role=self.role,
        )

    def history_row(self) -> dict[str, Any]:
        """The Mem0-compatible history row (plus memstream's extra columns)."""
        row = msgspec.to_builtins(self)
        row.update(row.pop("scope"))
        return row


class _EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    seq: int
    owner: str
    tenant: str
    memory_id: str
    scope: Scope
    created_at: str
    cause: str | None = None
    version: int = 1


class MemoryAdded(_EventBase, tag="memory_added"):
    memory: str
    metadata: dict[str, Any] = {}


class MemoryUpdated(_EventBase, tag="memory_updated"):
    memory: str
    old_memory: str | None = None
    metadata: dict[str, Any] = {}


class MemoryDeleted(_EventBase, tag="memory_deleted"):
    old_memory: str | None = None


class _RelationEventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    seq: int
    owner: str
    tenant: str
    relation_id: str
    scope: Scope
    created_at: str
    source: str
    relationship: str
    destination: str
    source_id: str
    destination_id: str
    valid_at: str
    invalid_at: str | None = None
    cause: str | None = None


class RelationAdded(_RelationEventBase, tag="relation_added"):
    pass


class RelationInvalidated(_RelationEventBase, tag="relation_invalidated"):
    """The edge stopped being true (``invalid_at``); it stays in the graph and the journal."""


class RelationDeleted(_RelationEventBase, tag="relation_deleted"):
    """The edge was removed (``delete_all`` / ``reset``)."""


MemoryEvent = MemoryAdded | MemoryUpdated | MemoryDeleted | RelationAdded | RelationInvalidated | RelationDeleted


def _relation_event(entry: JournalEntry) -> MemoryEvent:
    fact = entry.relation
    assert fact is not None, "a relation entry without its relation"
    kind = {"ADD": RelationAdded, "UPDATE": RelationInvalidated}.get(entry.event, RelationDeleted)
    return kind(seq=entry.seq, owner=entry.owner, tenant=entry.tenant, relation_id=entry.memory_id, scope=entry.scope,
                created_at=entry.updated_at or entry.created_at, cause=entry.cause,
                **msgspec.structs.asdict(fact))


def event_from_entry(entry: JournalEntry) -> MemoryEvent:
    """What a subscriber receives for a committed journal entry."""
    if entry.kind == "relation":
        return _relation_event(entry)
    common = dict(
        seq=entry.seq,
        owner=entry.owner,
        tenant=entry.tenant,
        memory_id=entry.memory_id,
        scope=entry.scope,
        created_at=entry.updated_at or entry.created_at,
        cause=entry.cause,
        version=entry.version,
    )
    if entry.event == "ADD":
        return MemoryAdded(memory=entry.new_memory or "", metadata=entry.metadata, **common)
    if entry.event == "UPDATE":
        return MemoryUpdated(
            memory=entry.new_memory or "", old_memory=entry.old_memory, metadata=entry.metadata, **common
        )
    return MemoryDeleted(old_memory=entry.old_memory, **common)


class Message(msgspec.Struct, frozen=True):
    role: str
    content: str
    name: str | None = None


def replay(entries: list[JournalEntry]) -> dict[str, MemoryRecord]:
    """Fold journal entries (in seq order) into the live memories they leave behind."""
    live: dict[str, MemoryRecord] = {}
    for entry in entries:
        if entry.kind != "memory":
            continue
        if entry.event == "DELETE":
            live.pop(entry.memory_id, None)
        else:
            live[entry.memory_id] = entry.record()
    return live


def replay_relations(entries: list[JournalEntry]) -> dict[str, JournalEntry]:
    """Fold journal entries into the relations they leave behind (invalidated ones included,
    with their ``invalid_at``): relation id -> its last entry."""
    live: dict[str, JournalEntry] = {}
    for entry in entries:
        if entry.kind != "relation":
            continue
        if entry.event == "DELETE":
            live.pop(entry.memory_id, None)
        else:
            live[entry.memory_id] = entry
    return live
