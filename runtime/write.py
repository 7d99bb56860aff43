"""The add path, one owner at a time (inside the owner's mailbox): extract facts → embed → fetch
similar memories → decide → append to the journal (the commit point) → apply to the projections →
publish events.

With graph memory on, a second LLM call (concurrent with the first) extracts relations; they are
resolved against the owner's entities, journaled in the same transaction and seq as the memories,
and projected into the graph store. The decisions themselves are pure (``runtime.reconcile``,
``runtime.relations``); this module fetches what they need and commits what they decide.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import msgspec
import structlog

from runtime import attributes, endings, reconcile
from runtime import relations as graph_rules
from runtime.attributes import AttributeClassifier
from runtime.clock import iso
from runtime.context import EngineContext
from runtime.errors import InvalidRequest
from runtime.extraction import ask, extract_facts, extract_relations
from runtime.messages import check_metadata, normalize_messages
from runtime.model import EntryDraft, JournalEntry, MemoryRecord, Scope, make_scope
from runtime.prompts import decision_schema, render_decision
from runtime.recovery import Projections
from runtime.results import change_dict
from runtime.timings import StageTimes, Stopwatch

log = structlog.get_logger("memstream.engine")
T = TypeVar("T")


class AddOutcome(msgspec.Struct):
    result: dict[str, Any]
    timings_ms: dict[str, float]
    entries: list[JournalEntry]
    replayed: bool = False  # the request id was committed before: the original result, nothing new


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


class Writer:
    """``add`` and the commit every change goes through (``runtime.changes`` commits here too)."""

    def __init__(self, ctx: EngineContext, projections: Projections):
        self.ctx = ctx
        self.projections = projections
        self.add_times = StageTimes()  # per-stage latency of recent adds (stats, benchmarks)
        self._classifier: AttributeClassifier | None = None

    async def commit(
        self, tenant: str, owner: str, drafts: list[EntryDraft], known: dict[str, list[float]],
        request_id: str | None, result: dict[str, Any], watch: Stopwatch,
    ) -> tuple[dict[str, Any], list[JournalEntry]]:
        """Append the drafts to the journal (a request id committed before answers with its first
        result and appends nothing), apply them to the projections, publish them to subscribers."""
        started = time.perf_counter()
        appended = await self.ctx.journal.append(
            tenant, owner, drafts, request_id=request_id, result=msgspec.json.encode(result)
        )
        watch.lap("journal", started)
        if appended.replayed_result is not None:
            return msgspec.json.decode(appended.replayed_result), []
        started = time.perf_counter()
        try:
            await self.projections.apply(appended.entries, known)
        finally:
            # committed is committed: subscribers follow the journal even while a projection lags
            self.ctx.hub.publish(appended.entries)
        watch.lap("store", started)
        return result, appended.entries

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
        metadata = check_metadata(metadata)
        if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 200):
            raise InvalidRequest("request_id must be a non-empty string of at most 200 characters")
        tenant = self.ctx.tenant(tenant)
        await self.ctx.ready()
        started = time.perf_counter()
        outcome = await self.ctx.serialized(
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
        watch = Stopwatch()
        if request_id is not None:
            prior = await self.ctx.journal.find_request(tenant, scope.owner, request_id)
            if prior is not None:
                # the first attempt may have failed after its commit: bring the projections up to
                # the journal before answering as the first time (or fail again, saying so)
                await self.projections.catch_up(tenant, scope.owner)
                return AddOutcome(result=msgspec.json.decode(prior), timings_ms={}, entries=[], replayed=True)
        await self.projections.catch_up(tenant, scope.owner)
        now = iso(self.ctx.clock.now())  # the relations' time (their step runs beside extraction)

        async def memories() -> tuple[list, dict[str, MemoryRecord], dict[str, list[float]]]:
            if not infer:
                return reconcile.verbatim_decisions(messages), {}, {}
            found = facts if facts is not None else await self._extract(messages, watch)
            return await self._reconcile(found, fact_vectors, scope, tenant, watch, messages)

        graph_step = None
        if self.ctx.graph_enabled and infer:
            async def graph_step() -> tuple[list[EntryDraft], dict[str, list[float]]]:
                return await self._graph_changes(messages, scope, tenant, now, request_id, watch)

        (decisions, existing, known), graph_out = await _both(memories, graph_step)
        role = next((m.role for m in messages if m.role != "system"), None)
        actor = next((m.name for m in messages if m.name), None)
        texts = list(dict.fromkeys(d.text for d in decisions
                                   if d.event in ("ADD", "UPDATE") and d.text and d.text not in known))
        if texts:
            started = time.perf_counter()
            known.update(zip(texts, await self.ctx.embedder.embed(texts)))
            watch.lap("embedding", started)
        # the memories' time is their commit's, stamped after the last slow step: the journal append
        # follows at once, so "commit -> subscriber" measured from created_at is what it says
        committed = iso(self.ctx.clock.now())
        drafts = reconcile.build_entries(decisions, existing=existing, scope=scope, tenant=tenant,
                                         metadata=metadata, now=committed, cause=request_id, actor_id=actor, role=role)
        result: dict[str, Any] = {"results": [change_dict(d) for d in drafts]}
        if self.ctx.graph_enabled:
            relation_drafts, relation_vectors = graph_out or ([], {})
            known.update(relation_vectors)
            result["relations"] = [graph_rules.change_dict(d) for d in relation_drafts]
            drafts = [*drafts, *relation_drafts]
        result, entries = await self.commit(tenant, scope.owner, drafts, known, request_id, result, watch)
        return AddOutcome(result=result, timings_ms=watch.ms, entries=entries, replayed=bool(drafts) and not entries)

    def _today(self) -> dt.date:
        return self.ctx.clock.now().date()

    async def _graph_changes(self, messages: list, scope: Scope, tenant: str, now: str, request_id: str | None,
                             watch: Stopwatch) -> tuple[list[EntryDraft], dict[str, list[float]]]:
        """Graph memory for one turn: extract triples, resolve their entities among the owner's
        (by name, then by embedding), decide what they add and invalidate. Returns the drafts and
        the vectors computed on the way (names, relation texts), reused by the apply."""
        policy, graph, embedder = self.ctx.config.graph, self.ctx.graph, self.ctx.embedder
        started = time.perf_counter()
        triples = await extract_relations(await self.ctx.llm(), messages, scope.owner, policy,
                                          self.ctx.config.memory.llm_retries, self._today(),
                                          grounded=self.ctx.config.memory.require_grounding)
        watch.lap("graph_extraction", started)
        if not triples:
            return [], {}
        started = time.perf_counter()
        names = graph_rules.names_of(triples)
        # one embedding batch: every name, and each relation's text as said (what it usually stays once
        # resolved); only texts whose names resolve to another spelling are embedded again below
        said = [graph_rules.said_text(t) for t in triples if not t.ended]
        wanted = list(dict.fromkeys([*names.values(), *said]))
        vectors: dict[str, list[float]] = dict(zip(wanted, await embedder.embed(wanted)))
        exact = await graph.entities_by_key(tenant, scope.owner, list(names))
        unresolved = [key for key in names if key not in {e.key for e in exact}]
        similar = {key: await graph.similar_entities(tenant, scope.owner, vectors[names[key]], policy.candidates)
                   for key in unresolved}
        entities = graph_rules.resolve_entities(names, tenant=tenant, owner=scope.owner, exact=exact,
                                                similar=similar, threshold=policy.entity_match_threshold, now=now)
        # what the turn could contradict: the owner's valid relations of the same kinds from the same sources
        current = await graph.relations(tenant, scope.owner, source_ids=sorted({e.id for e in entities.values()}),
                                        relationships=sorted({t.relationship for t in triples}),
                                        limit=policy.scan_limit)
        drafts = graph_rules.plan_relations(triples, entities, current, exclusive=policy.exclusive, scope=scope,
                                            tenant=tenant, now=now, cause=request_id)
        texts = [d.relation.text() for d in drafts if d.relation is not None]
        texts += [e.name for e in entities.values()]
        missing = list(dict.fromkeys(t for t in texts if t not in vectors))
        if missing:
            vectors.update(zip(missing, await embedder.embed(missing)))
        watch.lap("graph", started)
        return drafts, vectors

    async def extract_facts(self, messages: Any) -> list[str]:
        """LLM call 1 alone (no store access, no mailbox): batch ingestion runs it upstream."""
        return await self._extract(normalize_messages(messages), Stopwatch())

    async def _extract(self, messages: list, watch: Stopwatch) -> list[str]:
        started = time.perf_counter()
        facts = await extract_facts(await self.ctx.llm(), messages, self.ctx.config.memory)
        watch.lap("extraction", started)
        return facts

    async def _reconcile(self, facts: list[str], fact_vectors: list[list[float]] | None, scope: Scope,
                         tenant: str, watch: Stopwatch, messages: list):
        """The facts' neighbours among the stored memories, what the rules need (the attributes the
        facts state and who holds them now, the endings the user said), and the decision step for
        the facts the rules leave open (``reconcile.plan_decisions``): the decisions, the memories
        they may change, the facts' vectors."""
        policy = self.ctx.config.memory
        if not facts:
            return [], {}, {}
        if fact_vectors is None or len(fact_vectors) != len(facts):
            started = time.perf_counter()
            fact_vectors = await self.ctx.embedder.embed(facts)
            watch.lap("embedding", started)
        known = dict(zip(facts, fact_vectors))
        started = time.perf_counter()
        hits = await self.ctx.vectors.search_batch(fact_vectors, tenant=tenant, scope=scope, filters=None,
                                                   limit=policy.existing_top_k)
        classifier = await self._attributes()
        fact_attributes = [classifier.classify(f, v) for f, v in zip(facts, fact_vectors)] if classifier else None
        held = await self._held(classifier, {a[0] for a in fact_attributes or [] if a}, scope, tenant)
        said = await self._said_endings(messages, scope, tenant)
        watch.lap("store", started)
        plan = reconcile.plan_decisions(facts, hits, threshold=policy.decision_threshold,
                                        fact_attributes=fact_attributes, held=held, said_endings=said,
                                        said_threshold=policy.said_ending_threshold)
        existing = {**plan.shown, **plan.ended}
        if not plan.asked:
            return plan.settled, existing, known
        idmap = reconcile.IdMap(plan.shown)
        started = time.perf_counter()
        decided = await ask(
            await self.ctx.llm(), "decision",
            render_decision(reconcile.existing_for_prompt(idmap, plan.shown), plan.asked),
            decision_schema(plan.asked, [[idmap.small_id(m) for m in ids] for ids in plan.candidates]),
            lambda raw: reconcile.parse_fact_decisions(raw, facts=plan.asked, idmap=idmap, similarity=plan.candidates,
                                                       known_at=policy.known_threshold,
                                                       change_at=policy.change_threshold),
            retries=policy.llm_retries,
        )
        watch.lap("decision", started)
        return [*plan.settled, *decided], existing, known

    async def _attributes(self) -> AttributeClassifier | None:
        """The single-valued attributes' examples, embedded once per engine (None when none is on)."""
        policy = self.ctx.config.memory
        if not policy.single_valued:
            return None
        if self._classifier is None:
            names = list(attributes.EXAMPLES)
            texts = [t for name in names for t in attributes.EXAMPLES[name]]
            vectors = iter(await self.ctx.embedder.embed(texts))
            self._classifier = AttributeClassifier(
                {name: [next(vectors) for _ in attributes.EXAMPLES[name]] for name in names},
                enabled=policy.single_valued, threshold=policy.attribute_threshold,
                margin=policy.attribute_margin)
        return self._classifier

    async def _held(self, classifier: AttributeClassifier | None, names: set[str], scope: Scope,
                    tenant: str) -> dict[str, list[MemoryRecord]]:
        """The stored memories that state each attribute now, most typical first: found by searching
        with the attribute's examples, kept when they classify as that attribute themselves."""
        if classifier is None or not names:
            return {}
        held: dict[str, list[MemoryRecord]] = {}
        for name in sorted(names):
            found: dict[str, MemoryRecord] = {}
            for near in await self.ctx.vectors.search_batch(
                    classifier.example_vectors[name], tenant=tenant, scope=scope, filters=None,
                    limit=self.ctx.config.memory.existing_top_k):
                found.update((hit.record.id, hit.record) for hit in near)
            records = list(found.values())
            if not records:
                continue
            vectors = await self.ctx.embedder.embed([r.text for r in records])
            classes = [classifier.classify(r.text, v) for r, v in zip(records, vectors)]
            mine = sorted(((c[1], r) for c, r in zip(classes, records) if c is not None and c[0] == name),
                          key=lambda pair: -pair[0])
            if mine:
                held[name] = [r for _, r in mine]
        return held

    async def _said_endings(self, messages: list, scope: Scope, tenant: str) -> list[tuple[str, list]]:
        """The user's clauses that state an end, each with its stored neighbours."""
        if self.ctx.config.memory.said_ending_threshold >= 1.0:
            return []
        clauses = [c for m in messages if m.role == "user" for c in endings.ending_clauses(m.content)]
        if not clauses:
            return []
        near = await self.ctx.vectors.search_batch(await self.ctx.embedder.embed(clauses), tenant=tenant, scope=scope,
                                                   filters=None, limit=self.ctx.config.memory.existing_top_k)
        return list(zip(clauses, near))
