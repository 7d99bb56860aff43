"""Search: the memories of a scope ranked by meaning, with the graph's relations when graph
memory is on. The query is embedded once; the vector store ranks within tenant + scope (+ the
metadata filters); ``fallback`` widens run → agent → user while fewer than ``limit`` are found."""

from __future__ import annotations

from typing import Any

from runtime import relations as graph_rules
from runtime.context import EngineContext
from runtime.errors import InvalidRequest
from runtime.filters import parse_filters
from runtime.model import make_scope
from runtime.results import record_dict


class Searcher:
    def __init__(self, ctx: EngineContext):
        self.ctx = ctx

    async def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
                     run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int | None = None,
                     threshold: float | None = None, fallback: bool = False,
                     tenant: str | None = None) -> dict[str, Any]:
        """Memories in scope ranked by meaning. ``fallback=True`` widens run → agent → user
        while fewer than ``limit`` results are found."""
        ctx = self.ctx
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string")
        scope = make_scope(user_id, agent_id, run_id)
        expr = parse_filters(filters)
        limit, _ = ctx.page(limit or ctx.config.memory.default_search_limit, 0)
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise InvalidRequest("threshold must be a number")
        tenant = ctx.tenant(tenant)
        await ctx.ready()
        [vector] = await ctx.embedder.embed([query])
        results: dict[str, dict[str, Any]] = {}
        for level in (scope.broader() if fallback else [scope]):
            for hit in await ctx.vectors.search(vector, tenant=tenant, scope=level, filters=expr, limit=limit,
                                                threshold=threshold):
                results.setdefault(hit.record.id, record_dict(hit.record, hit.score))
            if len(results) >= limit:
                break
        ranked = sorted(results.values(), key=lambda r: r["score"], reverse=True)[:limit]
        found: dict[str, Any] = {"results": ranked}
        if ctx.graph_enabled:
            widest = scope.broader()[-1] if fallback else scope
            hits = await ctx.graph.search_relations(tenant, scope.owner, vector, scope=widest,
                                                    limit=min(limit, ctx.config.graph.search_limit))
            found["relations"] = [graph_rules.relation_dict(h.relation.id, h.relation.fact(), h.score) for h in hits]
        return found
