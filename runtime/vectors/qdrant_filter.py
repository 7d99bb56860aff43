"""One translation of the filter tree into Qdrant conditions, for both Qdrant libraries.

qdrant-client (server) and qdrant-edge-py (in-process) share Qdrant's filter model but not
their Python classes; each adapter passes a small ``Dialect`` that builds its own classes.
"""

from __future__ import annotations

from typing import Any, Protocol

from runtime.filters import And, Cond, Expr, Not, Or
from runtime.model import Scope
from runtime.vectors.port import METADATA_PREFIX, scope_conditions


class Dialect(Protocol):
    def equals(self, key: str, value: Any) -> Any: ...

    def any_of(self, key: str, values: list[Any]) -> Any: ...

    def range(self, key: str, **bounds: float) -> Any: ...

    def substring(self, key: str, text: str) -> Any: ...

    def is_empty(self, key: str) -> Any: ...

    def filter(self, must: list[Any] | None = None, should: list[Any] | None = None,
               must_not: list[Any] | None = None) -> Any: ...


def _condition(d: Dialect, cond: Cond) -> tuple[str, Any]:
    """(clause, condition) where clause is 'must' or 'must_not'."""
    key = METADATA_PREFIX + cond.key
    if cond.op == "exists":
        return ("must_not" if cond.value else "must"), d.is_empty(key)
    if cond.op in ("eq", "ne"):
        # Qdrant matches exact values for keywords, integers and booleans; a float needs a range
        match = d.range(key, gte=cond.value, lte=cond.value) if isinstance(cond.value, float) \
            else d.equals(key, cond.value)
        return ("must" if cond.op == "eq" else "must_not"), match
    if cond.op in ("in", "nin"):
        return ("must" if cond.op == "in" else "must_not"), d.any_of(key, list(cond.value))
    if cond.op == "contains":
        return "must", d.substring(key, cond.value)
    return "must", d.range(key, **{cond.op: cond.value})


def translate(d: Dialect, expr: Expr) -> Any:
    if isinstance(expr, Cond):
        clause, condition = _condition(d, expr)
        return d.filter(**{clause: [condition]})
    children = [translate(d, item) for item in expr.items]
    if isinstance(expr, And):
        return d.filter(must=children)
    if isinstance(expr, Or):
        return d.filter(should=children)
    assert isinstance(expr, Not)
    return d.filter(must_not=children)


def build_filter(d: Dialect, tenant: str, scope: Scope | None, filters: Expr | None) -> Any:
    """Tenant and scope equalities ANDed outside the caller's filter: it can narrow, never widen."""
    must = [d.equals(key, value) for key, value in scope_conditions(tenant, scope)]
    if filters is not None:
        must.append(translate(d, filters))
    return d.filter(must=must)
