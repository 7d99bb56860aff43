"""Mem0's ways of naming whose memories a request is about, reduced to memstream's scope.

Mem0's API grew three of them: scope ids at the top level of the body (v1), inside a ``filters``
object that may be an ``AND`` list (v2, v3), and query parameters (v1 reads and deletes). They
all end here: the scope ids (user, agent, run) come out, and what else the filters say becomes
memstream's metadata filter (``runtime.filters`` syntax). memstream reads one owner at a time,
so a scope id must be one plain value and may not sit under ``OR`` / ``NOT``. Pure.
"""

from __future__ import annotations

from typing import Any

from gateway.rest.errors import FieldError, describe

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
LOGICAL = ("AND", "OR", "NOT")
# filter keys of Mem0's platform that memstream has no data for: refused rather than ignored, so a
# caller never mistakes an unfiltered answer for a filtered one
UNSUPPORTED = {
    "app_id": "memstream scopes memories by user_id, agent_id and run_id; app_id is not supported",
    "categories": "memstream does not categorize memories; filter on metadata instead",
    "created_at": "filtering on creation time is not supported; use as_of on get_all or metadata",
    "updated_at": "filtering on update time is not supported; use metadata",
    "keywords": "keyword filters are not supported; use search",
    "memory_ids": "filtering by memory ids is not supported; use get",
}


def resolve(top: dict[str, Any], filters: dict[str, Any] | None, *, metadata: dict[str, Any] | None = None,
            where: str = "filters") -> tuple[dict[str, str], dict[str, Any] | None]:
    """(scope ids, metadata filter) from top-level ids, a Mem0 ``filters`` object and v1's
    ``metadata`` equality filter. At least one scope id must be named somewhere."""
    ids: dict[str, str] = {}
    for key in ("app_id", *SCOPE_KEYS):
        value = top.get(key)
        if value is None or value == "":
            continue
        if key == "app_id":
            raise FieldError(key, UNSUPPORTED[key])
        ids[key] = value
    conditions: list[dict[str, Any]] = []
    if filters is not None:
        if not isinstance(filters, dict):
            raise FieldError(where, "must be an object")
        for path, item in _conjuncts(filters, where):
            _take(path, item, ids, conditions)
    for key, value in (metadata or {}).items():
        conditions.append({key: value})
    if not ids:
        raise FieldError("user_id", "name at least one of user_id, agent_id, run_id "
                                    f"(at the top level or in {where})")
    if not conditions:
        return ids, None
    return ids, conditions[0] if len(conditions) == 1 else {"AND": conditions}


def _conjuncts(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """The conditions a filter object ANDs together, each as a one-key object with its path:
    the object's own keys, and the items of ``AND`` lists (nested ones flattened)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for key, value in node.items():
        if key != "AND":
            out.append((f"{path}.{key}", {key: value}))
            continue
        if not isinstance(value, list) or not value:
            raise FieldError(f"{path}.AND", "must be a non-empty list of filter objects")
        for index, item in enumerate(value):
            if not isinstance(item, dict) or not item:
                raise FieldError(f"{path}.AND[{index}]", "must be a non-empty filter object")
            out.extend(_conjuncts(item, f"{path}.AND[{index}]"))
    return out


def _take(path: str, item: dict[str, Any], ids: dict[str, str], conditions: list[dict[str, Any]]) -> None:
    [(key, value)] = item.items()
    if key in SCOPE_KEYS:
        ids_value = _one_id(path, value)
        if ids.get(key, ids_value) != ids_value:
            raise FieldError(path, f"names {key} {describe(ids_value)} but the request already names "
                                   f"{describe(ids[key])}")
        ids[key] = ids_value
    elif key in UNSUPPORTED:
        raise FieldError(path, UNSUPPORTED[key])
    elif key == "metadata":
        if not isinstance(value, dict) or not value:
            raise FieldError(path, "must be a non-empty object of metadata keys and values")
        conditions.extend({k: v} for k, v in value.items())
    elif key in LOGICAL:
        conditions.append(_metadata_only(path[: -len(key) - 1], item))  # path ends with ".OR"
    else:
        conditions.append(item)  # a metadata key, in memstream's filter syntax


def _one_id(path: str, value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"eq"}:
        value = value["eq"]
    if not isinstance(value, str) or not value or value == "*":
        raise FieldError(path, "must be one id (a non-empty string): memstream reads one owner at a time, "
                               f"got {describe(value)}")
    if len(value) > 256:
        raise FieldError(path, "must be at most 256 characters")
    return value


def _metadata_only(path: str, node: dict[str, Any]) -> dict[str, Any]:
    """A filter under OR / NOT, with Mem0's ``metadata`` objects unfolded into metadata keys. Scope
    ids may only be ANDed: under OR / NOT they would widen or invert the owner."""
    out: dict[str, Any] = {}
    for key, child in node.items():
        where = f"{path}.{key}"
        if key in SCOPE_KEYS or key in UNSUPPORTED:
            raise FieldError(where, f"{key} may not appear under OR or NOT")
        if key == "metadata" and isinstance(child, dict) and child:
            out.update(child)
        elif key in LOGICAL:
            if not isinstance(child, list) or not child or not all(isinstance(c, dict) for c in child):
                raise FieldError(where, "must be a non-empty list of filter objects")
            out[key] = [_metadata_only(f"{where}[{i}]", c) for i, c in enumerate(child)]
        else:
            out[key] = child
    return out
