"""Search: the memories of a scope ranked by meaning and by their words, with the graph's relations
when graph memory is on. The query is embedded once (not at all for a sparse search without graph
memory); the vector store ranks within tenant + scope (+ the metadata filters) in the search's mode
(``runtime/vectors/hybrid.py``): dense, sparse (BM25) or hybrid (both, fused in the store), the
configured ``retrieval.mode`` unless the caller names one; ``fallback`` widens run → agent → user
while fewer than ``limit`` are found."""

from __future__ import annotations

from typing import Any

import structlog

from runtime import relations as graph_rules
from runtime.context import EngineContext
from runtime.errors import InvalidRequest
from runtime.filters import parse_filters
from runtime.model import make_scope
from runtime.results import record_dict
from runtime.vectors.hybrid import SearchMode, check_mode

log = structlog.get_logger("memstream.search")


class Searcher:
    def __init__(self, ctx: EngineContext):
        self.ctx = ctx
        self._warned_dense_only = False

    def _mode(self, requested: object) -> SearchMode:
        """The caller's mode, or the configured one. A store from before sparse vectors answers a
        search that named no mode densely (with one warning) until ``memstream backfill-sparse`` ran;
        one that asked for sparse or hybrid gets the store's error saying so."""
        if requested is not None:
            return check_mode(requested)
        mode = check_mode(self.ctx.config.retrieval.mode)
        if mode != "dense" and not self.ctx.vectors.has_sparse:
            if not self._warned_dense_only:
                log.warning("search_dense_only", configured=mode,
                            reason="the vector store has no sparse vectors yet: run `memstream backfill-sparse`")
                self._warned_dense_only = True
            return "dense"
        return mode

    async def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
                     run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int | None = None,
                     threshold: float | None = None, fallback: bool = False, tenant: str | None = None,
                     mode: str | None = None) -> dict[str, Any]:
        """Memories in scope, best first. ``mode``: ``dense`` (cosine similarity of the embeddings),
        ``sparse`` (BM25) or ``hybrid`` (both rankings fused: a result's ``score`` is then the fused
        score, which orders this search's results but is no similarity); default ``retrieval.mode``.
        ``threshold`` bounds the cosine similarity (in hybrid the dense leg's; in sparse the BM25
        score). ``fallback=True`` widens run → agent → user while fewer than ``limit`` are found."""
        ctx = self.ctx
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string")
        scope = make_scope(user_id, agent_id, run_id)
        expr = parse_filters(filters)
        limit, _ = ctx.page(limit or ctx.config.memory.default_search_limit, 0)
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise InvalidRequest("threshold must be a number")
        if mode is not None:
            check_mode(mode)
        tenant = ctx.tenant(tenant)
        await ctx.ready()
        mode = self._mode(mode)
        vector = (await ctx.embedder.embed([query]))[0] if mode != "sparse" or ctx.graph_enabled else None
        results: dict[str, dict[str, Any]] = {}
        for level in (scope.broader() if fallback else [scope]):
            for hit in await ctx.vectors.search(vector if mode != "sparse" else None, tenant=tenant, scope=level,
                                                filters=expr, limit=limit, threshold=threshold, text=query,
                                                mode=mode):
                results.setdefault(hit.record.id, record_dict(hit.record, hit.score))
            if len(results) >= limit:
                break
        ranked = sorted(results.values(), key=lambda r: r["score"], reverse=True)[:limit]
        found: dict[str, Any] = {"results": ranked}
        if ctx.graph_enabled:
            widest = scope.broader()[-1] if fallback else scope
            assert vector is not None
            hits = await ctx.graph.search_relations(tenant, scope.owner, vector, scope=widest,
                                                    limit=min(limit, ctx.config.graph.search_limit))
            found["relations"] = [graph_rules.relation_dict(h.relation.id, h.relation.fact(), h.score) for h in hits]
        return found
