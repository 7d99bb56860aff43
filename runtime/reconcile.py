"""The pure decision core of ``add``: parse what the LLM said, check it, turn it into journal drafts.

No I/O here: every function takes plain values and returns plain values, so the rules
that decide what gets remembered are tested without an LLM, a store or an event loop.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from runtime import endings
from runtime.errors import LLMOutputError
from runtime.model import DecisionKind, EntryDraft, MemoryRecord, Message, Scope, text_hash
from runtime.vectors.port import Hit

_WORD = re.compile(r"[\w']+", re.UNICODE)
_STOPWORDS = frozenset(
    "the a an and or but is are was were be been has have had do does did of in on at to for from with "
    "about as by it its this that these those i me my mine you your he she his her they them their we our "
    "user users name named likes like".split()
)


class Decision(msgspec.Struct, frozen=True):
    event: DecisionKind
    text: str
    memory_id: str | None = None  # None for ADD
    old_text: str | None = None


def _load(raw: Any) -> Any:
    if isinstance(raw, (str, bytes)):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise LLMOutputError(f"LLM output is not JSON: {exc}") from None
    return raw


def _content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if len(w) > 2 and w not in _STOPWORDS}


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def stated(conversation: str) -> str:
    """The conversation without its questions. Facts are what people state: asked "is it going to
    rain tomorrow?", a small model answers its own question ("Is going to rain tomorrow") and
    that answer is not something the user said."""
    return " ".join(s for s in _SENTENCE.findall(conversation) if not s.rstrip().endswith("?"))


def is_grounded(fact: str, conversation: str) -> bool:
    """A fact must share a content word with what the conversation states (its questions left
    out): small models invent the rest."""
    words = _content_words(fact)
    return not words or bool(words & _content_words(stated(conversation)))


# words that say when or how, not what: a fact made only of them ("Last month", "By the way") is a
# fragment the model split off a real fact ("Moved to Paris" + "Last month"), never one of its own
_FILLER = frozenset(
    """last next this week weeks month months year years today yesterday tomorrow tonight now ago soon
    recently morning mornings evening evenings night nights weekend weekends monday mondays tuesday tuesdays
    wednesday wednesdays thursday thursdays friday fridays saturday saturdays sunday sundays way remember
    please good great nice well thanks too also just really especially""".split()
)


def is_informative(fact: str) -> bool:
    """A fact says something when it has a number ("Is 34") or a content word that is not a time or
    a filler word."""
    return any(c.isdigit() for c in fact) or bool(_content_words(fact) - _FILLER)


def parse_facts(raw: Any, *, max_facts: int, max_chars: int, conversation: str | None = None) -> list[str]:
    """Validate ``{"facts": [str]}``; trim, de-duplicate, drop fragments (``is_informative``) and
    ungrounded facts; keep order."""
    data = _load(raw)
    if not isinstance(data, dict) or not isinstance(data.get("facts"), list):
        raise LLMOutputError('LLM output must be an object {"facts": [string, ...]}')
    facts: list[str] = []
    seen: set[str] = set()
    for item in data["facts"]:
        if not isinstance(item, str):
            raise LLMOutputError("every fact must be a string")
        fact = " ".join(item.split()).strip(" .")
        key = fact.casefold()
        if not fact or key in seen or len(fact) > max_chars or not is_informative(fact):
            continue
        if conversation is not None and not is_grounded(fact, conversation):
            continue
        seen.add(key)
        facts.append(fact)
    return facts[:max_facts]


class IdMap:
    """Shows the LLM small integer ids instead of UUIDs, and maps its answer back."""

    def __init__(self, memory_ids: Iterable[str]):
        self._to_small: dict[str, str] = {}
        for memory_id in memory_ids:
            self._to_small.setdefault(memory_id, str(len(self._to_small)))
        self._to_uuid = {small: memory_id for memory_id, small in self._to_small.items()}

    @property
    def small_ids(self) -> list[str]:
        return list(self._to_uuid)

    def resolve(self, small_id: str) -> str | None:
        return self._to_uuid.get(str(small_id).strip())

    def small_id(self, memory_id: str) -> str:
        return self._to_small[memory_id]

    def __len__(self) -> int:
        return len(self._to_uuid)


def existing_for_prompt(idmap: IdMap, memories: dict[str, MemoryRecord]) -> list[dict[str, str]]:
    return [{"id": small, "text": memories[idmap.resolve(small)].text} for small in idmap.small_ids]


class DecisionPlan(msgspec.Struct, frozen=True):
    """Which facts are settled without the LLM and which it must decide, against which memories."""

    settled: list[Decision]  # facts with no stored neighbour at the threshold: plain ADDs
    asked: list[str]  # facts the LLM decides, in the order it is shown them
    candidates: list[dict[str, float]]  # per asked fact: the memory ids it may change, with their similarity
    shown: dict[str, MemoryRecord]  # every memory the LLM is shown, by id
    ended: dict[str, MemoryRecord] = {}  # memories the rules settled (changed without the LLM), by id


def plan_decisions(facts: list[str], neighbours: list[list[Hit]], *, threshold: float,
                   fact_attributes: list[tuple[str, float] | None] | None = None,
                   held: dict[str, list[MemoryRecord]] | None = None,
                   said_endings: list[tuple[str, list[Hit]]] = (), said_threshold: float = 1.0) -> DecisionPlan:
    """Ask the LLM only about facts that could change a stored memory; settle the rest by rule.

    - A fact whose text is stored verbatim is known: nothing to do.
    - A fact that says something ended deletes the memories naming that thing (``runtime.endings``).
    - A fact stating a single-valued attribute of the user (``runtime.attributes``: home, diet)
      replaces the memories that hold that attribute now (``held``, best first): the first becomes
      the fact, the others are deleted. Of several such facts in a turn, the most typical replaces.
    - A clause of the user's own words that says something ended (``said_endings``, each with its
      neighbours) deletes the memories naming that thing that are at least ``said_threshold`` close
      and were not settled above: extraction often keeps only the new half of "I stopped X, so Y".
    - A fact with no stored memory at or above ``threshold`` cannot change or repeat anything: an
      ADD without a call, so a weak model's "no change" cannot lose it, and most turns need one
      LLM call. The others are asked, against their close memories not settled above."""
    settled: list[Decision] = []
    ended: dict[str, MemoryRecord] = {}

    def settle(fact: str, memories: list[MemoryRecord]) -> None:
        memories = [m for m in memories if m.id not in ended]
        if not memories:
            return
        if fact:
            settled.append(Decision("UPDATE", fact, memories[0].id, memories[0].text))
        settled.extend(Decision("DELETE", "", m.id, m.text) for m in memories[bool(fact):])
        ended.update((m.id, m) for m in memories)

    open_facts: list[tuple[int, str, list[Hit]]] = []
    for index, (fact, near) in enumerate(zip(facts, neighbours)):
        close = [n for n in near if n.score >= threshold]
        digest = text_hash(fact)
        if any(text_hash(n.record.text) == digest for n in close):
            continue
        ends = [n.record for n in endings.ended_memories(fact, close, threshold=threshold) if n.record.id not in ended]
        if ends:
            settle("", ends)  # the fact only says they are no longer true: DELETE, as the LLM is told
            continue
        open_facts.append((index, fact, close))
    attributes = fact_attributes or [None] * len(facts)
    replacing: dict[str, tuple[float, int]] = {}
    for index, _, _ in open_facts:
        if attributes[index] is not None:
            name, score = attributes[index]
            if (held or {}).get(name) and score > replacing.get(name, (-2.0, -1))[0]:
                replacing[name] = (score, index)
    replacers = {index: name for name, (_, index) in replacing.items()}
    rest: list[tuple[str, list[Hit]]] = []
    for index, fact, close in open_facts:
        if index in replacers and [m for m in (held or {})[replacers[index]] if m.id not in ended]:
            settle(fact, held[replacers[index]])
        else:
            rest.append((fact, close))
    for clause, near in said_endings:
        settle("", [n.record for n in endings.ended_memories(clause, near, threshold=said_threshold)])
    asked: list[str] = []
    candidates: list[dict[str, float]] = []
    shown: dict[str, MemoryRecord] = {}
    for fact, close in rest:
        close = [n for n in close if n.record.id not in ended]
        if not close:
            settled.append(Decision("ADD", fact))
            continue
        asked.append(fact)
        candidates.append({n.record.id: n.score for n in close})
        for n in close:
            shown.setdefault(n.record.id, n.record)
    return DecisionPlan(settled=settled, asked=asked, candidates=candidates, shown=shown, ended=ended)


def parse_fact_decisions(raw: Any, *, facts: list[str], idmap: IdMap,
                         similarity: list[dict[str, float]] | None = None, known_at: float = -1.0,
                         change_at: float = -1.0) -> list[Decision]:
    """Validate ``{"decisions": [{"fact", "event", "id"}, ...]}``: one answer per fact, in order.

    Every fact ends in an explicit outcome: a fact the answer leaves out is an ADD (never dropped);
    an id that was never shown is an error (the call is retried); a second change to a memory that
    an earlier fact of the same turn already changed becomes an ADD of its fact; a NONE ("already
    known") for a memory less similar than ``known_at`` is an ADD - a small model says NONE for new
    facts that merely share a topic; likewise an UPDATE or DELETE of a memory less similar than
    ``change_at`` is an ADD and the memory stays - the 0.5B default replaced "Is a product manager"
    with "Gym every Tuesday" (cosine 0.33) and "Partner is Sam" with "Married", and a wrong change
    loses a fact where a wrong ADD only leaves one that may be stale. An UPDATE's new text is the fact itself: facts are already
    short third-person sentences, and a small model asked to merge two texts rewrites them badly."""
    data = _load(raw)
    if not isinstance(data, dict) or not isinstance(data.get("decisions"), list):
        raise LLMOutputError('LLM output must be an object {"decisions": [{"fact", "event", "id"}, ...]}')
    answers = data["decisions"]
    decisions: list[Decision] = []
    touched: set[str] = set()
    for index, fact in enumerate(facts):
        item = answers[index] if index < len(answers) else {"event": "ADD", "id": "new"}
        if not isinstance(item, dict):
            raise LLMOutputError(f"decisions[{index}] must be an object")
        event = str(item.get("event", "")).upper()
        if event not in ("ADD", "UPDATE", "DELETE", "NONE"):
            raise LLMOutputError(f"decisions[{index}].event must be ADD, UPDATE, DELETE or NONE, got {event!r}")
        if event == "ADD":
            decisions.append(Decision("ADD", fact))
            continue
        memory_id = idmap.resolve(str(item.get("id", "")))
        if memory_id is None:
            raise LLMOutputError(f"decisions[{index}] refers to id {item.get('id')!r}, which was never shown "
                                 "to the LLM")
        score = similarity[index].get(memory_id, -1.0) if similarity is not None else 1.0
        if (event == "NONE" and score < known_at) or (event in ("UPDATE", "DELETE") and score < change_at):
            decisions.append(Decision("ADD", fact))
            continue
        if memory_id in touched:
            if event != "NONE":
                decisions.append(Decision("ADD", fact))
            continue
        if event == "NONE":
            continue
        touched.add(memory_id)
        decisions.append(Decision(event, fact if event == "UPDATE" else "", memory_id))
    return decisions


def verbatim_decisions(messages: list[Message]) -> list[Decision]:
    """``infer=False``: every non-system message is stored as it is, no LLM."""
    return [Decision("ADD", m.content.strip()) for m in messages if m.role != "system" and m.content.strip()]


def build_entries(
    decisions: list[Decision],
    *,
    existing: dict[str, MemoryRecord],
    scope: Scope,
    tenant: str,
    metadata: dict[str, Any],
    now: str,
    cause: str | None,
    actor_id: str | None = None,
    role: str | None = None,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[EntryDraft]:
    """Decisions → journal drafts. NONE and no-op changes produce nothing; an ADD of a text that
    already exists in scope becomes NONE (exact-duplicate guard)."""
    drafts: list[EntryDraft] = []
    known_hashes = {m.hash or text_hash(m.text) for m in existing.values()}
    for decision in decisions:
        if decision.event == "ADD":
            digest = text_hash(decision.text)
            if digest in known_hashes:
                continue
            known_hashes.add(digest)
            drafts.append(
                EntryDraft(
                    id=new_id(), memory_id=new_id(), event="ADD", old_memory=None, new_memory=decision.text,
                    scope=scope, tenant=tenant, metadata=metadata, created_at=now, actor_id=actor_id,
                    role=role, cause=cause, version=1, hash=digest,
                )
            )
            continue
        current = existing.get(decision.memory_id or "")
        if current is None or decision.event == "NONE":
            continue
        if decision.event == "UPDATE":
            if decision.text == current.text:
                continue
            drafts.append(_change(current, "UPDATE", decision.text, now, cause, actor_id, role, new_id))
        elif decision.event == "DELETE":
            drafts.append(_change(current, "DELETE", None, now, cause, actor_id, role, new_id))
    return drafts


def _change(
    current: MemoryRecord,
    event: str,
    new_text: str | None,
    now: str,
    cause: str | None,
    actor_id: str | None,
    role: str | None,
    new_id: Callable[[], str],
    metadata: dict[str, Any] | None = None,
) -> EntryDraft:
    return EntryDraft(
        id=new_id(), memory_id=current.id, event=event, old_memory=current.text, new_memory=new_text,
        scope=current.scope, tenant=current.tenant,
        metadata=current.metadata if metadata is None else metadata,
        created_at=current.created_at, updated_at=now, actor_id=actor_id or current.actor_id,
        role=role or current.role, cause=cause, version=current.version + 1,
        hash=text_hash(new_text) if new_text is not None else current.hash,
    )


def update_entry(current: MemoryRecord, text: str, metadata: dict[str, Any] | None, now: str, cause: str | None,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> EntryDraft:
    """A direct ``update(memory_id, text)`` from the API."""
    return _change(current, "UPDATE", text, now, cause, None, None, new_id, metadata)


def delete_entry(current: MemoryRecord, now: str, cause: str | None,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> EntryDraft:
    return _change(current, "DELETE", None, now, cause, None, None, new_id)
