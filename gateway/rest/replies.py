"""Response bodies of the Mem0-compatible REST API, as msgspec types.

Every answer is converted through one of these before it is sent, so what ``/openapi.json``
promises is what a client gets. The shapes are Mem0's (key names and nesting), with memstream's
extras beside them (``version``, ``seq``, ``owner``); a client that does not know an extra key
ignores it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class _Reply(msgspec.Struct, kw_only=True):
    pass


class MemoryOut(_Reply, kw_only=True):
    id: str
    memory: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    hash: str = ""
    metadata: dict[str, Any] = {}
    categories: list[str] = []
    created_at: str = ""
    updated_at: str | None = None
    version: int = 1
    score: float | None = None
    actor_id: str | None = None
    role: str | None = None


class Updated(MemoryOut, kw_only=True):
    """The memory after ``PUT /v1/memories/{memory_id}/`` (Mem0 names its text ``text``)."""

    text: str
    message: str


class Change(_Reply, kw_only=True):
    id: str
    memory: str | None = None
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    previous_memory: str | None = None


class Relation(_Reply, kw_only=True):
    source: str
    relationship: str
    destination: str
    score: float | None = None


class Changes(_Reply, kw_only=True):
    """A finished add (``async_mode: false``)."""

    results: list[Change]
    relations: list[dict[str, Any]] | None = None


class Queued(_Reply, kw_only=True):
    """An add accepted for background processing (Mem0's async mode, the default)."""

    message: str = "Memory processing has been queued for background execution"
    status: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"] = "PENDING"
    event_id: str


class QueuedList(_Reply, kw_only=True):
    """v1's wrapping of ``Queued``."""

    results: list[Queued]


class SearchResults(_Reply, kw_only=True):
    results: list[MemoryOut]
    relations: list[Relation] | None = None


class MemoryPage(_Reply, kw_only=True):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[MemoryOut]
    relations: list[Relation] | None = None


class HistoryRow(_Reply, kw_only=True):
    id: str
    memory_id: str
    event: Literal["ADD", "UPDATE", "DELETE"]
    old_memory: str | None = None
    new_memory: str | None = None
    input: list[dict[str, Any]] = []
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = {}
    categories: list[str] = []
    created_at: str
    updated_at: str | None = None
    is_deleted: bool = False
    seq: int
    version: int = 1
    cause: str | None = None
    actor_id: str | None = None
    role: str | None = None


class Done(_Reply, kw_only=True):
    message: str


class Ping(_Reply, kw_only=True):
    status: str = "ok"
    org_id: str
    project_id: str
    user_email: str | None = None
    tenant: str
    owners: list[str]
    rights: list[str]


class Entity(_Reply, kw_only=True):
    id: str
    name: str
    type: Literal["user", "agent", "run"]
    total_memories: int
    owner: str
    organization: str
    created_at: str | None = None
    updated_at: str | None = None
    metadata: dict[str, Any] = {}
    head: int


class Entities(_Reply, kw_only=True):
    results: list[Entity]


class AddEvent(_Reply, kw_only=True):
    """``GET /v1/event/{event_id}/``: how a background add went."""

    id: str
    event_type: Literal["ADD"] = "ADD"
    status: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
    owner: str
    results: list[Change] = []
    error: str | None = None
    created_at: str
    updated_at: str


class Webhook(_Reply, kw_only=True):
    webhook_id: str
    name: str
    url: str
    event_types: list[str]
    project: str
    is_active: bool
    created_at: str
    updated_at: str
    secret: str | None = None  # only in the answer to the request that created it


class DeadLane(_Reply, kw_only=True):
    """One owner whose deliveries to a webhook stopped after too many failures, at ``seq``."""

    owner: str
    seq: int
    attempts: int
    last_error: str | None = None
    since: str | None = None


class DeadLetters(_Reply, kw_only=True):
    webhook_id: str
    results: list[DeadLane]


class Replayed(_Reply, kw_only=True):
    message: str
    owners: list[str]
