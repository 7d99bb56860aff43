"""``AsyncMemory``: the whole memory API on one event loop, over injected ports.

Write path (one owner at a time, through the owner's mailbox): extract facts → embed →
fetch similar memories → decide → append to the journal (the commit point) → apply to
the vector store → publish events. A crash after the append is repaired by re-applying
journal entries past the store's watermark, on the next write of that owner and on open.

With graph memory on, a second LLM call (concurrent with the first) extracts relations; they
are resolved against the owner's entities, journaled in the same transaction and seq as the
memories, and projected into the graph store, which keeps a watermark of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import msgspec
import structlog

from runtime import reconcile
from runtime import relations as graph_rules
from runtime.clock import Clock, SystemClock, iso
from runtime.config import Config, load_config
from runtime.embedders import Embedder, make_embedder
from runtime.errors import BackendUnavailable, InvalidRequest, NotFound
from runtime.events import EventHub
from runtime.extraction import ask, extract_facts, extract_relations
from runtime.filters import matches, parse_filters
from runtime.graphs import EntityNode, GraphStore, RelationEdge, make_graph_store
from runtime.journal import Journal, make_journal
from runtime.llms import LLM, make_llm
from runtime.mailbox import OwnerMailboxes
from runtime.messages import normalize_messages
from runtime.model import (
    EntryDraft,
    JournalEntry,
    MemoryEvent,
    MemoryRecord,
    Scope,
    event_from_entry,
    make_scope,
    replay,
    replay_relations,
)
from runtime.prompts import decision_schema, render_decision
from runtime.results import change_dict, owner_scope, record_dict
from runtime.timings import StageTimes
from runtime.vectors import VectorStore, make_vector_store

log = structlog.get_logger("memstream.engine")
T = TypeVar("T")
VECTORS = "vectors"  # projection name for watermarks
GRAPH = "graph"
MAX_METADATA_BYTES = 16_384
MAX_METADATA_DEPTH = 32


class AddOutcome(msgspec.Struct):
    result: dict[str, Any]
    timings_ms: dict[str, float]
    entries: list[JournalEntry]
    replayed: bool = False  # the request id was committed before: the original result, nothing new


def _check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidRequest("metadata must be an object with string keys")
    if _depth(metadata) > MAX_METADATA_DEPTH:  # stores refuse to read back what nests deeper (serde's limit)
        raise InvalidRequest(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")
    try:
        size = len(json.dumps(metadata))
    except (TypeError, ValueError):
        raise InvalidRequest("metadata must be JSON-serializable") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(f"metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}")
    return metadata


def _depth(value: Any) -> int:
    """How deep lists and objects nest (iterative: the input may be hostile)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _edge_of(entry: JournalEntry) -> RelationEdge:
    fact = entry.relation
    assert fact is not None
    return RelationEdge(id=entry.memory_id, tenant=entry.tenant, scope=entry.scope, source_id=fact.source_id,
                        source=fact.source, relationship=fact.relationship, destination_id=fact.destination_id,
                        destination=fact.destination, valid_at=fact.valid_at, invalid_at=fact.invalid_at,
                        created_at=entry.created_at, updated_at=entry.updated_at, version=entry.version)


async def _both(first: Callable[[], Awaitable[T]], second: Callable[[], Awaitable[Any]] | None) -> tuple[T, Any]:
    """Run two independent steps concurrently; the first failure is raised as itself (not as a group)."""
    if second is None:
        return await first(), None
    outcomes: list[tuple[bool, Any]] = [(False, None), (False, None)]

    async def run(index: int, step: Callable[[], Awaitable[Any]]) -> None:
        try:
            outcomes[index] = (True, await step())
        except Exception as exc:  # re-raised below, after the other step finished or failed too
            outcomes[index] = (False, exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, 0, first)
        tg.start_soon(run, 1, second)
    for ok, value in outcomes:
        if not ok:
            raise value
    return outcomes[0][1], outcomes[1][1]


class _Stopwatch:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def lap(self, name: str, started: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000


class AsyncMemory:
    """The memory API. Adapters are built from ``config`` unless injected (tests, actors)."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        llm: LLM | None = None,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        journal: Journal | None = None,
        clock: Clock | None = None,
        hub: EventHub | None = None,
        graph_store: GraphStore | None = None,
    ):
        self.config = config or load_config()
        self._llm = llm
        self._embedder = embedder
        self._vectors = vector_store
        self._journal = journal
        self._graph = graph_store
        self._clock = clock or SystemClock()
        self.hub = hub or EventHub(self.config.memory.subscriber_queue)
        self._mailboxes = OwnerMailboxes(self.config.memory.mailbox_capacity)
        self.add_times = StageTimes()  # per-stage latency of recent adds (stats, benchmarks)
        self._applied: dict[tuple[str, str], int] = {}
        self._graph_applied: dict[tuple[str, str], int] = {}
        self._open_lock = anyio.Lock()
        self._llm_lock = anyio.Lock()
        self._opened = False
        # adapters passed in belong to the caller; only the ones built here are closed here
        self._injected = {id(part) for part in (llm, embedder, vector_store, journal, graph_store)
                          if part is not None}

    # ---- lifecycle -----------------------------------------------------------------------
    async def open(self) -> AsyncMemory:
        async with self._open_lock:
            if self._opened:
                return self
            if self._embedder is None:
                self._embedder = await anyio.to_thread.run_sync(make_embedder, self.config.embedder)
            if self._journal is None:
                self._journal = make_journal(self.config)
            await self._journal.open()
            if self._vectors is None:
                self._vectors = make_vector_store(self.config)
            await self._vectors.open(self._embedder.dims)
            if self.graph_enabled:
                if self._graph is None:
                    self._graph = make_graph_store(self.config)
                await self._graph.open(self._embedder.dims)
            self._opened = True
        await self.recover()
        return self

    async def close(self) -> None:
        for part in (self._llm, self._embedder, self._vectors, self._graph, self._journal):
            if part is not None and id(part) not in self._injected:
                await part.close()
        self._opened = False

    async def __aenter__(self) -> AsyncMemory:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _ready(self) -> None:
        if not self._opened:
            await self.open()

    async def _get_llm(self) -> LLM:
        if self._llm is None:
            async with self._llm_lock:
                if self._llm is None:
                    self._llm = await make_llm(self.config.llm)
        return self._llm

    @property
    def journal(self) -> Journal:
        assert self._journal is not None, "AsyncMemory is not open"
        return self._journal

    @property
    def vectors(self) -> VectorStore:
        assert self._vectors is not None, "AsyncMemory is not open"
        return self._vectors

    @property
    def graph_enabled(self) -> bool:
        return self.config.graph.enabled

    @property
    def graph(self) -> GraphStore:
        assert self._graph is not None, "graph memory is off or AsyncMemory is not open"
        return self._graph

    @property
    def embedder(self) -> Embedder:
        assert self._embedder is not None, "AsyncMemory is not open"
        return self._embedder

    @property
    def active_owners(self) -> int:
        """Owners with a request queued or running (their mailbox lanes)."""
        return self._mailboxes.active

    def _tenant(self, tenant: str | None) -> str:
        return tenant or self.config.tenant

    async def _serialized(self, tenant: str, owner: str, work: Callable[[], Awaitable[T]]) -> T:
        return await self._mailboxes.run(f"{tenant}\x1f{owner}", work)

    # ---- recovery ------------------------------------------------------------------------
    async def recover(self) -> int:
        """Re-apply every journal entry a projection (vector store, graph store) missed."""
        repaired = 0
        projections = [VECTORS, GRAPH] if self.graph_enabled else [VECTORS]
        lagging: dict[tuple[str, str], int] = {}
        for projection in projections:
            for tenant, owner, watermark, head in await self.journal.lagging(projection):
                lagging[(tenant, owner)] = max(lagging.get((tenant, owner), 0), head - watermark)
        for (tenant, owner), behind in sorted(lagging.items()):
            await self._serialized(tenant, owner, lambda t=tenant, o=owner: self._catch_up(t, o))
            repaired += behind
        if repaired:
            log.info("recovered", entries=repaired)
        return repaired

    async def _catch_up(self, tenant: str, owner: str) -> None:
        """Bring each projection of the owner up to the journal's head (once per process and owner,
        or again after a failed apply)."""
        key = (tenant, owner)
        steps = [(VECTORS, self._applied, self._apply_vectors)]
        if self.graph_enabled:
            steps.append((GRAPH, self._graph_applied, self._apply_graph))
        for projection, applied, apply in steps:
            if key in applied:
                continue
            watermark = await self.journal.watermark(projection, tenant, owner)
            pending = await self.journal.read(tenant, owner, after_seq=watermark)
            if pending:
                await apply(pending, {})
                log.info("projection_caught_up", projection=projection, tenant=tenant, owner=owner,
                         entries=len(pending))
            else:
                applied[key] = watermark

    async def _apply(self, entries: list[JournalEntry], known: dict[str, list[float]]) -> None:
        """Journal entries → every projection, idempotently."""
        await self._apply_vectors(entries, known)
        if self.graph_enabled:
            await self._apply_graph(entries, known)

    def _committed_but_unapplied(self, exc: BackendUnavailable, store: str, last: JournalEntry) -> BackendUnavailable:
        return BackendUnavailable(
            f"{exc} - the change is committed to the journal (seq {last.seq}) and will be applied "
            f"when the {store} is back; retry with the same request_id to get the result",
            backend=exc.backend, committed_seq=last.seq,
        )

    async def _embed_missing(self, texts: list[str], known: dict[str, list[float]]) -> dict[str, list[float]]:
        vectors = dict(known)
        missing = list(dict.fromkeys(t for t in texts if t not in vectors))
        if missing:
            vectors.update(zip(missing, await self.embedder.embed(missing)))
        return vectors

    async def _apply_vectors(self, entries: list[JournalEntry], known: dict[str, list[float]]) -> None:
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
                await self.vectors.upsert(live, [vectors[r.text] for r in live])
            if gone:
                await self.vectors.delete(gone)
        except BackendUnavailable as exc:
            self._applied.pop(key, None)
            raise self._committed_but_unapplied(exc, "vector store", last) from exc
        await self.journal.set_watermark(VECTORS, last.tenant, last.owner, last.seq)
        self._applied[key] = last.seq

    async def _apply_graph(self, entries: list[JournalEntry], known: dict[str, list[float]]) -> None:
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
            edges = [_edge_of(e) for e in final.values() if e.event != "DELETE"]
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
                await self.graph.apply(
                    last.tenant, last.owner, entities=list(entities.values()),
                    entity_vectors=[vectors[e.name] for e in entities.values()], relations=edges,
                    relation_vectors=[vectors[e.fact().text()] for e in edges], deleted=deleted)
            except BackendUnavailable as exc:
                self._graph_applied.pop(key, None)
                raise self._committed_but_unapplied(exc, "graph store", last) from exc
        await self.journal.set_watermark(GRAPH, last.tenant, last.owner, last.seq)
        self._graph_applied[key] = last.seq

    async def _commit(
        self, tenant: str, owner: str, drafts: list[EntryDraft], known: dict[str, list[float]],
        request_id: str | None, result: dict[str, Any], watch: _Stopwatch,
    ) -> tuple[dict[str, Any], list[JournalEntry]]:
        started = time.perf_counter()
        appended = await self.journal.append(
            tenant, owner, drafts, request_id=request_id, result=msgspec.json.encode(result)
        )
        watch.lap("journal", started)
        if appended.replayed_result is not None:
            return msgspec.json.decode(appended.replayed_result), []
        started = time.perf_counter()
        try:
            await self._apply(appended.entries, known)
        finally:
            # committed is committed: subscribers follow the journal even while a projection lags
            self.hub.publish(appended.entries)
        watch.lap("store", started)
        return result, appended.entries

    def _today(self) -> dt.date:
        return self._clock.now().date()

    # ---- write path ----------------------------------------------------------------------
    async def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
                  run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
                  request_id: str | None = None, tenant: str | None = None) -> dict[str, Any]:
        """Remember what a conversation says. Returns ``{"results": [{"id", "memory", "event"}]}``."""
        outcome = await self.add_detailed(messages, user_id=user_id, agent_id=agent_id, run_id=run_id,
                                          metadata=metadata, infer=infer, request_id=request_id, tenant=tenant)
        return outcome.result

    async def add_detailed(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
                           run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
                           request_id: str | None = None, tenant: str | None = None,
                           facts: list[str] | None = None,
                           fact_vectors: list[list[float]] | None = None) -> AddOutcome:
        """``add`` plus per-stage timings and the committed journal entries (benchmarks, actors).
        ``facts`` (and their vectors) skip extraction: batch ingestion extracts them upstream."""
        scope = make_scope(user_id, agent_id, run_id)
        parsed = normalize_messages(messages)
        metadata = _check_metadata(metadata)
        if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 200):
            raise InvalidRequest("request_id must be a non-empty string of at most 200 characters")
        tenant = self._tenant(tenant)
        await self._ready()
        started = time.perf_counter()
        outcome = await self._serialized(
            tenant, scope.owner,
            lambda: self._add_serialized(parsed, scope, tenant, metadata, infer, request_id, facts, fact_vectors),
        )
        total_ms = (time.perf_counter() - started) * 1000
        if not outcome.replayed:
            self.add_times.record({**outcome.timings_ms, "total": total_ms})
        log.info("add", tenant=tenant, owner=scope.owner, request_id=request_id, infer=infer,
                 changes=len(outcome.entries), ms=round(total_ms, 1),
                 **{f"{k}_ms": round(v, 1) for k, v in outcome.timings_ms.items()})
        return outcome

    async def _add_serialized(self, messages: list, scope: Scope, tenant: str, metadata: dict[str, Any],
                              infer: bool, request_id: str | None, facts: list[str] | None,
                              fact_vectors: list[list[float]] | None) -> AddOutcome:
        watch = _Stopwatch()
        if request_id is not None:
            prior = await self.journal.find_request(tenant, scope.owner, request_id)
            if prior is not None:
                # the first attempt may have failed after its commit: bring the projections up to
                # the journal before answering as the first time (or fail again, saying so)
                await self._catch_up(tenant, scope.owner)
                return AddOutcome(result=msgspec.json.decode(prior), timings_ms={}, entries=[], replayed=True)
        await self._catch_up(tenant, scope.owner)
        now = iso(self._clock.now())

        async def memories() -> tuple[list, dict[str, MemoryRecord], dict[str, list[float]]]:
            if not infer:
                return reconcile.verbatim_decisions(messages), {}, {}
            found = facts if facts is not None else await self._extract(messages, watch)
            return await self._reconcile(found, fact_vectors, scope, tenant, watch)

        graph_step = None
        if self.graph_enabled and infer:
            async def graph_step() -> tuple[list[EntryDraft], dict[str, list[float]]]:
                return await self._graph_changes(messages, scope, tenant, now, request_id, watch)

        (decisions, existing, known), graph_out = await _both(memories, graph_step)
        role = next((m.role for m in messages if m.role != "system"), None)
        actor = next((m.name for m in messages if m.name), None)
        drafts = reconcile.build_entries(decisions, existing=existing, scope=scope, tenant=tenant,
                                         metadata=metadata, now=now, cause=request_id, actor_id=actor, role=role)
        texts = [d.new_memory for d in drafts if d.new_memory and d.new_memory not in known]
        if texts:
            started = time.perf_counter()
            known.update(zip(texts, await self.embedder.embed(texts)))
            watch.lap("embedding", started)
        result: dict[str, Any] = {"results": [change_dict(d) for d in drafts]}
        if self.graph_enabled:
            relation_drafts, relation_vectors = graph_out or ([], {})
            known.update(relation_vectors)
            result["relations"] = [graph_rules.change_dict(d) for d in relation_drafts]
            drafts = [*drafts, *relation_drafts]
        result, entries = await self._commit(tenant, scope.owner, drafts, known, request_id, result, watch)
        return AddOutcome(result=result, timings_ms=watch.ms, entries=entries, replayed=bool(drafts) and not entries)

    async def _graph_changes(self, messages: list, scope: Scope, tenant: str, now: str, request_id: str | None,
                             watch: _Stopwatch) -> tuple[list[EntryDraft], dict[str, list[float]]]:
        """Graph memory for one turn: extract triples, resolve their entities among the owner's
        (by name, then by embedding), decide what they add and invalidate. Returns the drafts and
        the vectors computed on the way (names, relation texts), reused by the apply."""
        policy = self.config.graph
        started = time.perf_counter()
        triples = await extract_relations(await self._get_llm(), messages, scope.owner, policy,
                                          self.config.memory.llm_retries, self._today(),
                                          grounded=self.config.memory.require_grounding)
        watch.lap("graph_extraction", started)
        if not triples:
            return [], {}
        started = time.perf_counter()
        names = graph_rules.names_of(triples)
        # one embedding batch: every name, and each relation's text as said (what it usually stays once
        # resolved); only texts whose names resolve to another spelling are embedded again below
        said = [graph_rules.said_text(t) for t in triples if not t.ended]
        wanted = list(dict.fromkeys([*names.values(), *said]))
        vectors: dict[str, list[float]] = dict(zip(wanted, await self.embedder.embed(wanted)))
        exact = await self.graph.entities_by_key(tenant, scope.owner, list(names))
        unresolved = [key for key in names if key not in {e.key for e in exact}]
        similar = {key: await self.graph.similar_entities(tenant, scope.owner, vectors[names[key]], policy.candidates)
                   for key in unresolved}
        entities = graph_rules.resolve_entities(names, tenant=tenant, owner=scope.owner, exact=exact,
                                                similar=similar, threshold=policy.entity_match_threshold, now=now)
        # what the turn could contradict: the owner's valid relations of the same kinds from the same sources
        current = await self.graph.relations(tenant, scope.owner, source_ids=sorted({e.id for e in entities.values()}),
                                             relationships=sorted({t.relationship for t in triples}),
                                             limit=policy.scan_limit)
        drafts = graph_rules.plan_relations(triples, entities, current, exclusive=policy.exclusive, scope=scope,
                                            tenant=tenant, now=now, cause=request_id)
        texts = [d.relation.text() for d in drafts if d.relation is not None]
        texts += [e.name for e in entities.values()]
        missing = list(dict.fromkeys(t for t in texts if t not in vectors))
        if missing:
            vectors.update(zip(missing, await self.embedder.embed(missing)))
        watch.lap("graph", started)
        return drafts, vectors

    async def extract_facts(self, messages: Any) -> list[str]:
        """LLM call 1 alone (no store access, no mailbox): batch ingestion runs it upstream."""
        return await self._extract(normalize_messages(messages), _Stopwatch())

    async def _extract(self, messages: list, watch: _Stopwatch) -> list[str]:
        started = time.perf_counter()
        facts = await extract_facts(await self._get_llm(), messages, self.config.memory)
        watch.lap("extraction", started)
        return facts

    async def _reconcile(self, facts: list[str], fact_vectors: list[list[float]] | None, scope: Scope,
                         tenant: str, watch: _Stopwatch):
        policy = self.config.memory
        if not facts:
            return [], {}, {}
        if fact_vectors is None or len(fact_vectors) != len(facts):
            started = time.perf_counter()
            fact_vectors = await self.embedder.embed(facts)
            watch.lap("embedding", started)
        known = dict(zip(facts, fact_vectors))
        started = time.perf_counter()
        hits = await self.vectors.search_batch(fact_vectors, tenant=tenant, scope=scope, filters=None,
                                               limit=policy.existing_top_k)
        watch.lap("store", started)
        plan = reconcile.plan_decisions(facts, hits, threshold=policy.decision_threshold)
        if not plan.asked:
            return plan.settled, plan.shown, known
        idmap = reconcile.IdMap(plan.shown)
        started = time.perf_counter()
        decided = await ask(
            await self._get_llm(), "decision",
            render_decision(reconcile.existing_for_prompt(idmap, plan.shown), plan.asked),
            decision_schema(plan.asked, [[idmap.small_id(m) for m in ids] for ids in plan.candidates]),
            lambda raw: reconcile.parse_fact_decisions(raw, facts=plan.asked, idmap=idmap, similarity=plan.candidates,
                                                       known_at=policy.known_threshold),
            retries=policy.llm_retries,
        )
        watch.lap("decision", started)
        return [*plan.settled, *decided], plan.shown, known

    async def _record(self, memory_id: str, tenant: str) -> MemoryRecord:
        if not isinstance(memory_id, str) or not memory_id:
            raise InvalidRequest("memory_id must be a non-empty string")
        found = await self.vectors.get(tenant, [memory_id])
        if not found:
            raise NotFound(f"no memory with id {memory_id!r}")
        return found[0]

    async def _change_one(
        self, memory_id: str, tenant: str | None, make: Callable[[MemoryRecord, str], EntryDraft],
        request_id: str | None,
    ) -> JournalEntry | None:
        tenant = self._tenant(tenant)
        await self._ready()
        try:
            record = await self._record(memory_id, tenant)
        except NotFound:
            if request_id is not None:  # a retried request that did commit: answer as the first time
                for entry in await self.journal.history(tenant, memory_id):
                    if entry.cause == request_id:
                        return entry
            raise

        async def work() -> JournalEntry | None:
            await self._catch_up(tenant, record.scope.owner)
            current = await self._record(memory_id, tenant)  # re-read inside the mailbox
            draft = make(current, iso(self._clock.now()))
            _, entries = await self._commit(tenant, current.scope.owner, [draft], {}, request_id,
                                            {"results": [change_dict(draft)]}, _Stopwatch())
            return entries[0] if entries else None

        return await self._serialized(tenant, record.scope.owner, work)

    async def update(self, memory_id: str, data: str, *, metadata: dict[str, Any] | None = None,
                     tenant: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        if not isinstance(data, str) or not data.strip():
            raise InvalidRequest("data must be a non-empty string")
        metadata = _check_metadata(metadata) if metadata is not None else None
        entry = await self._change_one(
            memory_id, tenant,
            lambda current, now: reconcile.update_entry(current, data.strip(), metadata, now, request_id),
            request_id,
        )
        return {"message": "Memory updated successfully!", "id": memory_id, "memory": data.strip(),
                "version": entry.version if entry else None}

    async def delete(self, memory_id: str, *, tenant: str | None = None,
                     request_id: str | None = None) -> dict[str, Any]:
        await self._change_one(memory_id, tenant,
                               lambda current, now: reconcile.delete_entry(current, now, request_id), request_id)
        return {"message": "Memory deleted successfully!", "id": memory_id}

    async def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None, tenant: str | None = None) -> dict[str, Any]:
        scope = make_scope(user_id, agent_id, run_id)
        tenant = self._tenant(tenant)
        await self._ready()

        async def work() -> tuple[int, int]:
            await self._catch_up(tenant, scope.owner)
            records = await self._all_records(tenant, scope)
            now = iso(self._clock.now())
            drafts = [reconcile.delete_entry(r, now, "delete_all") for r in records]
            edges = await self._all_relations(tenant, scope) if self.graph_enabled else []
            drafts += [graph_rules.delete_entry(edge, now, "delete_all") for edge in edges]
            await self._commit(tenant, scope.owner, drafts, {}, None, {}, _Stopwatch())
            return len(records), len(edges)

        deleted, relations = await self._serialized(tenant, scope.owner, work)
        result: dict[str, Any] = {"message": "Memories deleted successfully!", "deleted": deleted}
        if self.graph_enabled:
            result["deleted_relations"] = relations
        return result

    async def reset(self, *, tenant: str | None = None) -> dict[str, Any]:
        """Delete every memory of the tenant - journaled like any other delete, so history survives."""
        tenant = self._tenant(tenant)
        await self._ready()
        deleted = 0
        for _, owner in await self.journal.owners(tenant):
            result = await self.delete_all(tenant=tenant, **owner_scope(owner).fields())
            deleted += result["deleted"]
        return {"message": "Memory store reset", "deleted": deleted}

    async def _all_relations(self, tenant: str, scope: Scope) -> list[RelationEdge]:
        """Every relation of the scope, invalidated ones too, paged (delete_all)."""
        edges: list[RelationEdge] = []
        page = self.config.memory.max_page_size
        while True:
            batch = await self.graph.relations(tenant, scope.owner, scope=scope, include_invalid=True, limit=page,
                                               offset=len(edges))
            edges.extend(batch)
            if len(batch) < page or len(edges) >= self.config.graph.scan_limit:
                return edges

    async def _all_records(self, tenant: str, scope: Scope) -> list[MemoryRecord]:
        records: list[MemoryRecord] = []
        page = self.config.memory.max_page_size
        while True:
            batch = await self.vectors.list(tenant=tenant, scope=scope, filters=None, limit=page,
                                            offset=len(records))
            records.extend(batch)
            if len(batch) < page:
                return records

    # ---- read path -----------------------------------------------------------------------
    async def get(self, memory_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        await self._ready()
        return record_dict(await self._record(memory_id, self._tenant(tenant)))

    async def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                      filters: dict[str, Any] | None = None, limit: int = 100, offset: int = 0,
                      as_of: int | float | str | dt.datetime | None = None,
                      include_invalidated: bool = False, tenant: str | None = None) -> dict[str, Any]:
        """Memories in scope, paged. ``as_of`` (a seq, a datetime or an ISO time) replays the journal
        to answer with what was known then. With graph memory on, ``relations`` lists the scope's
        relations (valid ones; invalidated ones too with ``include_invalidated``), paged alike."""
        scope = make_scope(user_id, agent_id, run_id)
        expr = parse_filters(filters)
        limit, offset = self._page(limit, offset)
        tenant = self._tenant(tenant)
        await self._ready()
        edges: list[RelationEdge] = []
        if as_of is None:
            records = await self.vectors.list(tenant=tenant, scope=scope, filters=expr, limit=limit, offset=offset)
            if self.graph_enabled:
                edges = await self.graph.relations(tenant, scope.owner, scope=scope,
                                                   include_invalid=include_invalidated, limit=limit, offset=offset)
        else:
            entries = await self._journal_as_of(tenant, scope, as_of)
            records = _in_scope(replay(entries).values(), scope)
            records = [r for r in records if matches(expr, r.metadata)][offset:offset + limit]
            if self.graph_enabled:
                edges = [_edge_of(e) for e in _in_scope(replay_relations(entries).values(), scope)]
                edges = [e for e in edges if include_invalidated or e.invalid_at is None][offset:offset + limit]
        result: dict[str, Any] = {"results": [record_dict(r) for r in records]}
        if self.graph_enabled:
            result["relations"] = [graph_rules.relation_dict(e.id, e.fact()) for e in edges]
        return result

    def _page(self, limit: int, offset: int) -> tuple[int, int]:
        if not isinstance(limit, int) or not 1 <= limit <= self.config.memory.max_page_size:
            raise InvalidRequest(f"limit must be between 1 and {self.config.memory.max_page_size}")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequest("offset must be a non-negative integer")
        return limit, offset

    async def _journal_as_of(self, tenant: str, scope: Scope,
                             as_of: int | float | str | dt.datetime) -> list[JournalEntry]:
        until_seq = until_ts = None
        if isinstance(as_of, bool):
            raise InvalidRequest("as_of must be a seq (int), a datetime or an ISO-8601 time")
        if isinstance(as_of, int):
            until_seq = as_of
        elif isinstance(as_of, float):
            until_ts = as_of
        else:
            try:
                moment = as_of if isinstance(as_of, dt.datetime) else dt.datetime.fromisoformat(str(as_of))
            except ValueError:
                raise InvalidRequest(f"as_of {as_of!r} is not an ISO-8601 time") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            until_ts = moment.timestamp()
        return await self.journal.read(tenant, scope.owner, until_seq=until_seq, until_ts=until_ts)

    async def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
                     run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int | None = None,
                     threshold: float | None = None, fallback: bool = False,
                     tenant: str | None = None) -> dict[str, Any]:
        """Memories in scope ranked by meaning. ``fallback=True`` widens run → agent → user
        while fewer than ``limit`` results are found."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string")
        scope = make_scope(user_id, agent_id, run_id)
        expr = parse_filters(filters)
        limit, _ = self._page(limit or self.config.memory.default_search_limit, 0)
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise InvalidRequest("threshold must be a number")
        tenant = self._tenant(tenant)
        await self._ready()
        [vector] = await self.embedder.embed([query])
        results: dict[str, dict[str, Any]] = {}
        for level in (scope.broader() if fallback else [scope]):
            for hit in await self.vectors.search(vector, tenant=tenant, scope=level, filters=expr, limit=limit,
                                                 threshold=threshold):
                results.setdefault(hit.record.id, record_dict(hit.record, hit.score))
            if len(results) >= limit:
                break
        ranked = sorted(results.values(), key=lambda r: r["score"], reverse=True)[:limit]
        found: dict[str, Any] = {"results": ranked}
        if self.graph_enabled:
            widest = scope.broader()[-1] if fallback else scope
            hits = await self.graph.search_relations(tenant, scope.owner, vector, scope=widest,
                                                     limit=min(limit, self.config.graph.search_limit))
            found["relations"] = [graph_rules.relation_dict(h.relation.id, h.relation.fact(), h.score) for h in hits]
        return found

    async def history(self, memory_id: str | None = None, *, user_id: str | None = None,
                      agent_id: str | None = None, run_id: str | None = None, since_seq: int = 0,
                      limit: int = 1000, tenant: str | None = None) -> list[dict[str, Any]]:
        """The change log of one memory, or (with a scope) of one owner after ``since_seq``."""
        tenant = self._tenant(tenant)
        await self._ready()
        if memory_id is not None:
            if not isinstance(memory_id, str) or not memory_id:
                raise InvalidRequest("memory_id must be a non-empty string")
            entries = await self.journal.history(tenant, memory_id)
            if not entries:
                raise NotFound(f"no history for memory id {memory_id!r}")
        else:
            scope = make_scope(user_id, agent_id, run_id)
            limit, _ = self._page(limit, 0)
            entries = await self.journal.read(tenant, scope.owner, after_seq=since_seq, limit=limit)
        return [e.history_row() for e in entries]

    async def head(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                   tenant: str | None = None) -> int:
        """The owner's last committed seq."""
        scope = make_scope(user_id, agent_id, run_id)
        await self._ready()
        return await self.journal.head(self._tenant(tenant), scope.owner)

    async def subscribe(self, *, user_id: str | None = None, agent_id: str | None = None,
                        run_id: str | None = None, after_seq: int = 0,
                        tenant: str | None = None) -> AsyncIterator[MemoryEvent]:
        """Every change of the owner after ``after_seq``, in order, then live. Raises
        ``ResyncRequired`` if the consumer falls too far behind."""
        scope = make_scope(user_id, agent_id, run_id)
        tenant = self._tenant(tenant)
        await self._ready()

        async def read(after: int) -> list[MemoryEvent]:
            return [event_from_entry(e) for e in await self.journal.read(tenant, scope.owner, after_seq=after,
                                                                           limit=500)]

        async for event in self.hub.stream(tenant, scope.owner, after_seq, read):
            yield event

    async def read_events(self, *, user_id: str | None = None, agent_id: str | None = None,
                          run_id: str | None = None, after_seq: int = 0, limit: int = 500,
                          tenant: str | None = None) -> list[MemoryEvent]:
        """One page of the owner's events after ``after_seq`` (the replay half of ``subscribe``,
        as a plain call: what a gateway fanning out one live stream uses to catch subscribers up)."""
        scope = make_scope(user_id, agent_id, run_id)
        limit, _ = self._page(limit, 0)
        await self._ready()
        return [event_from_entry(e) for e in await self.journal.read(self._tenant(tenant), scope.owner,
                                                                      after_seq=after_seq, limit=limit)]

    async def subscribe_tenant(self, *, tenant: str | None = None) -> AsyncIterator[MemoryEvent]:
        """Every owner's changes in the tenant, live from now (admin view; no replay)."""
        await self._ready()
        async for event in self.hub.stream_tenant(self._tenant(tenant)):
            yield event


def _in_scope(items: Any, scope: Scope) -> list[Any]:
    """Records or journal entries whose scope has every id the wanted scope names."""
    wanted = scope.fields()
    return [item for item in items if all(item.scope.fields().get(k) == v for k, v in wanted.items())]


__all__ = ["AsyncMemory", "AddOutcome"]
