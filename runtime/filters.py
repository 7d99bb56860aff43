"""Metadata filters: Mem0's filter syntax parsed into a small, validated expression tree.

The tree is the only thing adapters see. It can name metadata keys only: the tenant and
scope restriction is added by the engine outside the tree, so no filter can widen it.
``matches`` evaluates a tree in Python (for ``as_of`` reads); adapters translate it to
their store's native filter.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from runtime.errors import InvalidRequest

COMPARISONS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "icontains", "exists")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}(\.[A-Za-z_][A-Za-z0-9_\-]{0,63}){0,3}$")
MAX_DEPTH = 8
MAX_CONDITIONS = 64
MAX_LIST = 1000


class Cond(msgspec.Struct, frozen=True):
    key: str
    op: str
    value: Any = None


class And(msgspec.Struct, frozen=True):
    items: tuple[Expr, ...]


class Or(msgspec.Struct, frozen=True):
    items: tuple[Expr, ...]


class Not(msgspec.Struct, frozen=True):
    items: tuple[Expr, ...]


Expr = Cond | And | Or | Not


def parse_filters(filters: dict[str, Any] | None) -> Expr | None:
    """Mem0 syntax → tree. ``{"k": v}`` is eq, ``{"k": {"in": [...]}}``, ``{"AND"|"OR"|"NOT": [...]}``,
    ``{"k": "*"}`` means the key exists."""
    if filters is None or filters == {}:
        return None
    counter = [0]
    expr = _parse_mapping(filters, depth=0, counter=counter, path="filters")
    return expr


def _parse_mapping(node: Any, *, depth: int, counter: list[int], path: str) -> Expr:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"{path}: filters nest deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict) or not node:
        raise InvalidRequest(f"{path}: a filter must be a non-empty object")
    parts: list[Expr] = []
    for key, value in node.items():
        if not isinstance(key, str):
            raise InvalidRequest(f"{path}: filter keys must be strings")
        if key in ("AND", "OR", "NOT"):
            if not isinstance(value, list) or not value:
                raise InvalidRequest(f"{path}.{key} must be a non-empty list of filters")
            items = tuple(
                _parse_mapping(item, depth=depth + 1, counter=counter, path=f"{path}.{key}[{i}]")
                for i, item in enumerate(value)
            )
            parts.append({"AND": And, "OR": Or, "NOT": Not}[key](items))
            continue
        if not _KEY.match(key):
            raise InvalidRequest(f"{path}: {key!r} is not a valid metadata key")
        parts.extend(_parse_condition(key, value, counter=counter, path=f"{path}.{key}"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_condition(key: str, value: Any, *, counter: list[int], path: str) -> list[Cond]:
    if isinstance(value, dict):
        if not value:
            raise InvalidRequest(f"{path}: an operator object must not be empty")
        conds = [_make_cond(key, op, operand, path=path) for op, operand in value.items()]
    elif value == "*":
        conds = [Cond(key, "exists", True)]
    else:
        conds = [_make_cond(key, "eq", value, path=path)]
    counter[0] += len(conds)
    if counter[0] > MAX_CONDITIONS:
        raise InvalidRequest(f"filters have more than {MAX_CONDITIONS} conditions")
    return conds


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and len(value) > 1024)


def _make_cond(key: str, op: Any, operand: Any, *, path: str) -> Cond:
    if op not in COMPARISONS:
        raise InvalidRequest(f"{path}: unknown operator {op!r}; use one of {', '.join(COMPARISONS)}")
    if op in ("in", "nin"):
        if not isinstance(operand, list) or not operand or len(operand) > MAX_LIST:
            raise InvalidRequest(f"{path}.{op} needs a non-empty list of at most {MAX_LIST} values")
        if not all(_is_scalar(v) for v in operand):
            raise InvalidRequest(f"{path}.{op} values must be strings, numbers or booleans")
        return Cond(key, op, tuple(operand))
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise InvalidRequest(f"{path}.{op} needs a number")
        return Cond(key, op, operand)
    if op in ("contains", "icontains"):
        if not isinstance(operand, str) or not operand:
            raise InvalidRequest(f"{path}.{op} needs a non-empty string")
        return Cond(key, op, operand)
    if op == "exists":
        return Cond(key, "exists", bool(operand))
    if not _is_scalar(operand):
        raise InvalidRequest(f"{path}.{op} needs a string, number or boolean")
    return Cond(key, op, operand)


_MISSING = object()


def _lookup(metadata: dict[str, Any], key: str) -> Any:
    node: Any = metadata
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _values(found: Any) -> list[Any]:
    return found if isinstance(found, list) else [found]


def matches(expr: Expr | None, metadata: dict[str, Any]) -> bool:
    """Evaluate a tree against one memory's metadata (the semantics every adapter must share)."""
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(matches(item, metadata) for item in expr.items)
    if isinstance(expr, Or):
        return any(matches(item, metadata) for item in expr.items)
    if isinstance(expr, Not):
        return not any(matches(item, metadata) for item in expr.items)
    found = _lookup(metadata, expr.key)
    if expr.op == "exists":
        return (found is not _MISSING) == expr.value
    if expr.op == "ne":
        return found is _MISSING or expr.value not in _values(found)
    if expr.op == "nin":
        return found is _MISSING or not any(v in expr.value for v in _values(found))
    if found is _MISSING:
        return False
    values = _values(found)
    if expr.op == "eq":
        return any(_same(v, expr.value) for v in values)
    if expr.op == "in":
        return any(_same(v, option) for v in values for option in expr.value)
    if expr.op in ("contains", "icontains"):
        fold = (lambda s: s.casefold()) if expr.op == "icontains" else (lambda s: s)
        return any(isinstance(v, str) and fold(expr.value) in fold(v) for v in values)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    compare = {
        "gt": lambda v: v > expr.value,
        "gte": lambda v: v >= expr.value,
        "lt": lambda v: v < expr.value,
        "lte": lambda v: v <= expr.value,
    }[expr.op]
    return any(compare(v) for v in numbers)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
