"""The projections of the journal and how they are kept up to it: journal entries → vector store
and graph store, idempotently, each with a watermark (the last seq it holds) kept in the journal.

A crash or an outage after a commit leaves a projection behind the journal; it is repaired by
re-applying the entries past its watermark: for every owner on open (``recover``), and for one
owner before each of its writes (``catch_up``).

A watermark may only say what the store keeps through a crash. A vector store without a WAL of
its own (Qdrant Edge by default: the journal already is one) keeps its writes once flushed, so
its watermarks are written after each flush, every ``flush_every`` entries and on close; a crash
in between re-applies at most those entries.
"""

from __future__ import annotations

import anyio
import structlog

from runtime import relations as graph_rules
from runtime.context import EngineContext
from runtime.errors import BackendUnavailable
from runtime.graphs import EntityNode
from runtime.model import JournalEntry

log = structlog.get_logger("memstream.engine")
VECTORS = "vectors"  # projection names, as the journal's watermarks know them
GRAPH = "graph"


def committed_but_unapplied(exc: BackendUnavailable, store: str, last: JournalEntry) -> BackendUnavailable:
    return BackendUnavailable(
        f"{exc} - the change is committed to the journal (seq {last.seq}) and will be applied "
        f"when the {store} is back; retry with the same request_id to get the result",
        backend=exc.backend, committed_seq=last.seq,
    )


class Projections:
    """Applies journal entries to the stores and knows, per owner, which seq each store holds
    (learned once per process and owner; forgotten when an apply fails, so it is checked again)."""

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx
        self._applied: dict[tuple[str, str], int] = {}
        self._graph_applied: dict[tuple[str, str], int] = {}
        self._unflushed: dict[tuple[str, str], int] = {}  # in the vector store, not yet through a flush
        self._entries_unflushed = 0
        self._flushing = anyio.Lock()

    async def recover(self) -> int:
        """Re-apply every journal entry a projection (vector store, graph store) missed."""
        repaired = 0
        projections = [VECTORS, GRAPH] if self.ctx.graph_enabled else [VECTORS]
        lagging: dict[tuple[str, str], int] = {}
        for projection in projections:
            for tenant, owner, watermark, head in await self.ctx.journal.lagging(projection):
                lagging[(tenant, owner)] = max(lagging.get((tenant, owner), 0), head - watermark)
        for (tenant, owner), behind in sorted(lagging.items()):
            await self.ctx.serialized(tenant, owner, lambda t=tenant, o=owner: self.catch_up(t, o))
            repaired += behind
        await self.flush_vectors()  # what was re-applied is held from now on
        if repaired:
            log.info("recovered", entries=repaired)
        return repaired

    async def catch_up(self, tenant: str, owner: str) -> None:
        """Bring each projection of the owner up to the journal's head (once per process and owner,
        or again after a failed apply). Runs inside the owner's mailbox."""
        key = (tenant, owner)
        steps = [(VECTORS, self._applied, self.apply_vectors)]
        if self.ctx.graph_enabled:
            steps.append((GRAPH, self._graph_applied, self.apply_graph))
        for projection, applied, apply in steps:
            if key in applied:
                continue
            watermark = await self.ctx.journal.watermark(projection, tenant, owner)
            pending = await self.ctx.journal.read(tenant, owner, after_seq=watermark)
            if pending:
                await apply(pending, {})
                log.info("projection_caught_up", projection=projection, tenant=tenant, owner=owner,
                         entries=len(pending))
            else:
                applied[key] = watermark

    async def apply(self, entries: list[JournalEntry], known: dict[str, list[float]]) -> None:
        """Journal entries → every projection, idempotently. ``known``: vectors already computed
        for some texts (the add path's), so they are not embedded twice."""
        await self.apply_vectors(entries, known)
        if self.ctx.graph_enabled:
            await self.apply_graph(entries, known)

    async def _embed_missing(self, texts: list[str], known: dict[str, list[float]]) -> dict[str, list[float]]:
        vectors = dict(known)
        missing = list(dict.fromkeys(t for t in texts if t not in vectors))
        if missing:
            vectors.update(zip(missing, await self.ctx.embedder.embed(missing)))
        return vectors

    async def apply_vectors(self, entries: list[JournalEntry], known: dict[str, list[float]]) -> None:
        """Journal entries → vector store, idempotently (final state per memory id)."""
        if not entries:
            return
        final: dict[str, JournalEntry] = {}
        for entry in entries:
            if entry.kind == "memory":
                final[entry.memory_id] = entry
        live = [e.record() for e in final.values() if e.event != "DELETE"]
        gone = [e.memory_id for e in final.values() if e.event == "DELETE"]
        vectors = await self._embed_missing([r.text for r in live], known)
        last = entries[-1]
        key = (last.tenant, last.owner)
        try:
            if live:
                await self.ctx.vectors.upsert(live, [vectors[r.text] for r in live])
            if gone:
                await self.ctx.vectors.delete(gone)
        except BackendUnavailable as exc:
            self._applied.pop(key, None)
            raise committed_but_unapplied(exc, "vector store", last) from exc
        self._applied[key] = last.seq
        flush_every = self.ctx.vectors.flush_every
        if flush_every is None:
            await self.ctx.journal.set_watermark(VECTORS, last.tenant, last.owner, last.seq)
            return
        self._unflushed[key] = max(self._unflushed.get(key, 0), last.seq)
        self._entries_unflushed += len(entries)
        if self._entries_unflushed >= flush_every:
            await self.flush_vectors()

    async def flush_vectors(self) -> None:
        """Flush the vector store, then record as held what it held before the flush. A failed flush
        fails no caller (their changes are committed and in the store); it is tried again next time."""
        async with self._flushing:
            pending, self._unflushed, self._entries_unflushed = self._unflushed, {}, 0
            if not pending:
                return
            try:
                await self.ctx.vectors.flush()
            except BackendUnavailable as exc:
                for key, seq in pending.items():
                    self._unflushed[key] = max(self._unflushed.get(key, 0), seq)
                log.warning("vector_flush_failed", error=str(exc), owners=len(pending))
                return
            for (tenant, owner), seq in pending.items():
                await self.ctx.journal.set_watermark(VECTORS, tenant, owner, seq)

    async def apply_graph(self, entries: list[JournalEntry], known: dict[str, list[float]]) -> None:
        """Journal entries → graph store, idempotently (final state per relation id; entities come from
        the relations that still exist)."""
        if not entries:
            return
        final: dict[str, JournalEntry] = {}
        for entry in entries:
            if entry.kind == "relation" and entry.relation is not None:
                final[entry.memory_id] = entry
        last = entries[-1]
        key = (last.tenant, last.owner)
        if final:
            edges = [graph_rules.edge_of(e) for e in final.values() if e.event != "DELETE"]
            deleted = [e.memory_id for e in final.values() if e.event == "DELETE"]
            entities: dict[str, EntityNode] = {}
            for edge in edges:
                for entity_id, name in ((edge.source_id, edge.source), (edge.destination_id, edge.destination)):
                    entities.setdefault(entity_id, EntityNode(
                        id=entity_id, tenant=edge.tenant, owner=edge.owner, name=name,
                        key=graph_rules.name_key(name), created_at=edge.created_at))
            texts = [e.name for e in entities.values()] + [e.fact().text() for e in edges]
            vectors = await self._embed_missing(texts, known)
            try:
                await self.ctx.graph.apply(
                    last.tenant, last.owner, entities=list(entities.values()),
                    entity_vectors=[vectors[e.name] for e in entities.values()], relations=edges,
                    relation_vectors=[vectors[e.fact().text()] for e in edges], deleted=deleted)
            except BackendUnavailable as exc:
                self._graph_applied.pop(key, None)
                raise committed_but_unapplied(exc, "graph store", last) from exc
        await self.ctx.journal.set_watermark(GRAPH, last.tenant, last.owner, last.seq)
        self._graph_applied[key] = last.seq
