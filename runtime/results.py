"""Result shapes: Mem0-compatible dicts, so Mem0 users can switch without rewriting callers."""

from __future__ import annotations

from typing import Any

from runtime.model import EntryDraft, MemoryRecord, Scope


def record_dict(record: MemoryRecord, score: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        "memory": record.text,
        "hash": record.hash,
        "metadata": record.metadata,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
    }
    out.update(record.scope.fields())
    if record.actor_id:
        out["actor_id"] = record.actor_id
    if record.role:
        out["role"] = record.role
    if score is not None:
        out["score"] = score
    return out


def change_dict(draft: EntryDraft) -> dict[str, Any]:
    out: dict[str, Any] = {"id": draft.memory_id, "memory": draft.new_memory or draft.old_memory, "event": draft.event}
    if draft.event == "UPDATE":
        out["previous_memory"] = draft.old_memory
    return out


def owner_scope(owner: str) -> Scope:
    """Inverse of ``Scope.owner`` for the owner-level scope (used by reset)."""
    kind, _, ident = owner.partition(":")
    return Scope(**{f"{kind}_id": ident})
