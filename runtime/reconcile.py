"""The pure decision core of ``add``: parse what the LLM said, check it, turn it into journal drafts.

No I/O here: every function takes plain values and returns plain values, so the rules
that decide what gets remembered are tested without an LLM, a store or an event loop.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

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


def parse_facts(raw: Any, *, max_facts: int, max_chars: int, conversation: str | None = None) -> list[str]:
    """Validate ``{"facts": [str]}``; trim, de-duplicate, drop ungrounded facts; keep order."""
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
        if not fact or key in seen or len(fact) > max_chars:
            continue
        if conversation is not None and not is_grounded(fact, conversation):
            continue
        seen.add(key)
        facts.append(fact)
    return facts[:max_facts]


class DecisionPlan(msgspec.Struct, frozen=True):
    """Which facts are settled without the LLM and which it must decide, against which memories."""

    settled: list[Decision]  # facts with no stored neighbour at the threshold: plain ADDs
    asked: list[str]  # facts the LLM decides, in the order it is shown them
    candidates: list[dict[str, float]]  # per asked fact: the memory ids it may change, with their similarity
    shown: dict[str, MemoryRecord]  # every memory the LLM is shown, by id


def plan_decisions(facts: list[str], neighbours: list[list[Hit]], *, threshold: float) -> DecisionPlan:
    """Ask the LLM only about facts that could change a stored memory.

    A fact with no stored memory at or above ``threshold`` cannot update, delete or repeat
    anything, so it is an ADD without a call: that keeps a new, unrelated fact from being lost to
    a weak model's "no change", and it takes the slow second call out of most turns. A fact whose
    text is already stored verbatim is known: nothing to ask either."""
    settled: list[Decision] = []
    asked: list[str] = []
    candidates: list[dict[str, float]] = []
    shown: dict[str, MemoryRecord] = {}
    for fact, near in zip(facts, neighbours):
        close = [n for n in near if n.score >= threshold]
        digest = text_hash(fact)
        if any(text_hash(n.record.text) == digest for n in close):
            continue
        if not close:
            settled.append(Decision("ADD", fact))
            continue
        asked.append(fact)
        candidates.append({n.record.id: n.score for n in close})
        for n in close:
            shown.setdefault(n.record.id, n.record)
    return DecisionPlan(settled=settled, asked=asked, candidates=candidates, shown=shown)


def pair_questions(plan: DecisionPlan) -> list[tuple[int, str]]:
    """Every (asked fact, close memory) pair, each fact's memories most similar first.

    The decision is asked one memory at a time: a 0.5B model answers "is this memory still true?"
    far better than it picks one of four events against a list of memories, and a fact that ends
    several memories ("Pixel died": the cat, its age) is seen against each of them."""
    return [(index, memory_id)
            for index, similar in enumerate(plan.candidates)
            for memory_id in sorted(similar, key=lambda m: -similar[m])]


def memories_to_check(plan: DecisionPlan) -> list[str]:
    """Every memory close to an asked fact, once, most similar first."""
    best: dict[str, float] = {}
    for similar in plan.candidates:
        for memory_id, score in similar.items():
            best[memory_id] = max(score, best.get(memory_id, score))
    return sorted(best, key=lambda m: -best[m])


def user_statements(messages: list[Message]) -> str:
    """What the user said in a turn (the whole transcript when no message is the user's)."""
    said = "\n".join(m.content.strip() for m in messages if m.role == "user" and m.content.strip())
    return said or "\n".join(m.content.strip() for m in messages if m.role != "system" and m.content.strip())


def parse_verdict(raw: Any) -> bool:
    """``{"still_true": "yes" | "no"}`` → whether the memory stays true."""
    data = _load(raw)
    answer = data.get("still_true") if isinstance(data, dict) else None
    if answer not in ("yes", "no"):
        raise LLMOutputError('LLM output must be an object {"still_true": "yes" or "no"}')
    return answer == "yes"


def decide_from_verdicts(plan: DecisionPlan, after_fact: dict[tuple[int, str], bool],
                         after_turn: dict[str, bool], *, known_at: float) -> list[Decision]:
    """The asked facts' decisions from two verdicts per memory: still true after the fact
    (``after_fact``, per pair) and still true after what the user said (``after_turn``). A fact
    ends a memory only when both say no: the 0.5B default says "no" too readily to either alone
    (against a fact it takes a wife's name for a new name of the user's; against the turn, its
    errors fall elsewhere). Of the memories a fact ends, the most similar becomes the fact (UPDATE)
    and the others are deleted; a fact that ends nothing is added, unless a memory at least
    ``known_at`` similar already says it. A missing verdict is a "yes": nothing is lost. A memory
    an earlier fact of the turn changed is left to that fact."""
    decisions: list[Decision] = []
    touched: set[str] = set()
    for index, fact in enumerate(plan.asked):
        similar = plan.candidates[index]
        ranked = sorted(similar, key=lambda m: -similar[m])
        ended = [m for m in ranked if m not in touched
                 and not after_fact.get((index, m), True) and not after_turn.get(m, True)]
        if ended:
            decisions.append(Decision("UPDATE", fact, ended[0]))
            decisions.extend(Decision("DELETE", "", m) for m in ended[1:])
            touched.update(ended)
        elif not any(similar[m] >= known_at for m in ranked if m not in touched):
            decisions.append(Decision("ADD", fact))
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
