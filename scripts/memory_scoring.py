"""Pure scoring for ``memstream eval-memory``: per-turn verdicts and their aggregation. No I/O,
no LLM, no event loop: the runner (scripts/eval_memory.py) feeds it what ``add`` returned and
what ``get_all`` listed. The dataset format is ``scripts.memory_dataset``; whether a memory holds
a fact, or invents something, is ``scripts.memory_matching``.

Aggregation
-----------
Per turn: a fact turn is remembered (after the turn) when all its facts are in the memories,
and at end when its facts still current at the end are (turns whose facts were all replaced
later are not checked at end). An update turn is resolved when none of the forgotten facts is in
the memories and all its new facts are (at end: the forgotten ones are still gone and its new
facts still current are there). A chit-chat turn fails when its ``add`` returned any ADD, UPDATE
or DELETE. A turn whose ``add`` failed keeps whatever the store holds and counts in the
``errors`` column too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from scripts.machine import percentile
from scripts.memory_dataset import Conversation
from scripts.memory_matching import describe_fact, fact_present, invented_reasons

CHANGES = frozenset({"ADD", "UPDATE", "DELETE"})


class TurnRecord(msgspec.Struct):
    """What the runner saw for one turn."""

    events: list[dict[str, Any]]  # the add's "results": {"id", "memory", "event", ...}
    memories: list[str]  # get_all texts after the turn
    latency_ms: float = 0.0
    llm_calls: dict[str, int] = {}
    timings_ms: dict[str, float] = {}
    error: str | None = None


class TurnScore(msgspec.Struct):
    conversation: str
    part: str
    index: int
    say: str
    kind: str
    topic: str
    expected: dict[str, Any]
    events: list[dict[str, Any]]
    memories_after: list[str]
    error: str | None
    latency_ms: float
    llm_calls: dict[str, int]
    timings_ms: dict[str, float]
    changed: bool  # the add returned an ADD, UPDATE or DELETE
    present_after: list[str]  # fact names (remember) found after the turn
    missing_after: list[str]
    lingering_after: list[str]  # forgotten names still found after the turn
    checked_at_end: list[str]  # remembered names still current at the end
    missing_at_end: list[str]
    lingering_at_end: list[str]
    ok_after: bool
    ok_at_end: bool | None  # None: nothing of this turn is checked at the end


class MemoryScore(msgspec.Struct):
    conversation: str
    part: str
    topic: str  # of the turn after which it first showed up
    first_seen_turn: int
    text: str
    reasons: list[str]

    @property
    def invented(self) -> bool:
        return bool(self.reasons)


class ConversationScore(msgspec.Struct):
    id: str
    part: str
    turns: list[TurnScore]
    memories: list[MemoryScore]
    memories_at_end: list[str]


def final_facts(conv: Conversation) -> dict[str, int]:
    """Fact name → the turn whose definition of it is current after the last turn."""
    current: dict[str, int] = {}
    for index, turn in enumerate(conv.turns):
        for name in turn.forget:
            current.pop(name, None)
        for name in turn.remember:
            current[name] = index
    return current


def score_conversation(conv: Conversation, records: Sequence[TurnRecord], *,
                       allowed_numbers: Iterable[str] = ()) -> ConversationScore:
    if len(records) != len(conv.turns):
        raise ValueError(f"{conv.id}: {len(records)} records for {len(conv.turns)} turns")
    allowed = frozenset(allowed_numbers)
    at_end = records[-1].memories
    final = final_facts(conv)
    defined: dict[str, Fact] = {}  # the current definition of each name while walking the turns
    turns: list[TurnScore] = []
    for index, (turn, record) in enumerate(zip(conv.turns, records)):
        forgotten = {name: defined[name] for name in turn.forget}
        for name in turn.forget:
            defined.pop(name)
        defined.update(turn.remember)
        after = record.memories
        present = [n for n, fact in turn.remember.items() if fact_present(fact, after)]
        missing = [n for n in turn.remember if n not in present]
        lingering = [n for n, fact in forgotten.items() if fact_present(fact, after)]
        checked = [n for n in turn.remember if final.get(n) == index]
        missing_end = [n for n in checked if not fact_present(turn.remember[n], at_end)]
        lingering_end = [n for n, fact in forgotten.items() if fact_present(fact, at_end)]
        changed = any(e.get("event") in CHANGES for e in record.events)
        if turn.kind == "chitchat":
            ok_after, ok_end = not changed, None
        elif turn.kind == "fact":
            ok_after = not missing
            ok_end = (not missing_end) if checked else None
        else:
            ok_after = not missing and not lingering
            ok_end = not missing_end and not lingering_end
        turns.append(TurnScore(
            conversation=conv.id, part=conv.part, index=index, say=turn.say, kind=turn.kind, topic=turn.topic,
            expected={"remember": {n: describe_fact(f) for n, f in turn.remember.items()},
                      "forget": {n: describe_fact(f) for n, f in forgotten.items()},
                      "checked_at_end": checked},
            events=record.events, memories_after=list(after), error=record.error,
            latency_ms=round(record.latency_ms, 1), llm_calls=dict(record.llm_calls),
            timings_ms={k: round(v, 1) for k, v in record.timings_ms.items()}, changed=changed,
            present_after=present, missing_after=missing, lingering_after=lingering, checked_at_end=checked,
            missing_at_end=missing_end, lingering_at_end=lingering_end, ok_after=ok_after, ok_at_end=ok_end,
        ))
    memories: list[MemoryScore] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        for text in record.memories:
            if text in seen:
                continue
            seen.add(text)
            said = [t.say for t in conv.turns[:index + 1]]
            memories.append(MemoryScore(conversation=conv.id, part=conv.part, topic=conv.turns[index].topic,
                                        first_seen_turn=index, text=text,
                                        reasons=invented_reasons(text, said, allowed_numbers=allowed)))
    return ConversationScore(id=conv.id, part=conv.part, turns=turns, memories=memories,
                             memories_at_end=list(at_end))


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def metrics(turns: Sequence[TurnScore], memories: Sequence[MemoryScore]) -> dict[str, Any]:
    """The numbers of one slice (a part, a topic, everything)."""
    facts = [t for t in turns if t.kind == "fact"]
    updates = [t for t in turns if t.kind == "update"]
    chat = [t for t in turns if t.kind == "chitchat"]
    facts_end = [t for t in facts if t.ok_at_end is not None]
    facts_expected = sum(len(t.expected["remember"]) for t in facts)
    facts_found = sum(len(t.present_after) for t in facts)
    calls = Counter()
    for t in turns:
        calls.update(t.llm_calls)
    latencies = [t.latency_ms for t in turns]
    invented = sum(m.invented for m in memories)
    out: dict[str, Any] = {
        "turns": len(turns),
        "errors": sum(t.error is not None for t in turns),
        "fact_turns": len(facts),
        "fact_turns_remembered_after": sum(t.ok_after for t in facts),
        "fact_turns_remembered_after_pct": _pct(sum(t.ok_after for t in facts), len(facts)),
        "facts_expected": facts_expected,
        "facts_remembered_after_pct": _pct(facts_found, facts_expected),
        "fact_turns_checked_at_end": len(facts_end),
        "fact_turns_remembered_at_end": sum(bool(t.ok_at_end) for t in facts_end),
        "fact_turns_remembered_at_end_pct": _pct(sum(bool(t.ok_at_end) for t in facts_end), len(facts_end)),
        "fact_turns_lost_later": sum(t.ok_after and t.ok_at_end is False for t in facts),
        "update_turns": len(updates),
        "update_turns_resolved_after": sum(t.ok_after for t in updates),
        "update_turns_resolved_after_pct": _pct(sum(t.ok_after for t in updates), len(updates)),
        "update_turns_resolved_at_end": sum(bool(t.ok_at_end) for t in updates),
        "update_turns_resolved_at_end_pct": _pct(sum(bool(t.ok_at_end) for t in updates), len(updates)),
        "update_turns_with_update_or_delete": sum(
            any(e.get("event") in ("UPDATE", "DELETE") for e in t.events) for t in updates),
        "chitchat_turns": len(chat),
        "chitchat_turns_that_changed": sum(t.changed for t in chat),
        "chitchat_turns_that_changed_pct": _pct(sum(t.changed for t in chat), len(chat)),
        "memories_stored": len(memories),
        "memories_invented": invented,
        "memories_invented_pct": _pct(invented, len(memories)),
        "llm_calls": sum(calls.values()),
        "llm_calls_by_name": dict(sorted(calls.items())),
        "llm_calls_per_turn": round(sum(calls.values()) / len(turns), 2) if turns else None,
        "latency_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
        "latency_ms_p95": round(percentile(latencies, 95), 1) if latencies else None,
    }
    return out


def breakdown(convs: Sequence[ConversationScore]) -> dict[str, Any]:
    """``{"summary": metrics, "by_topic": {topic: metrics}}`` over some conversations."""
    turns = [t for c in convs for t in c.turns]
    memories = [m for c in convs for m in c.memories]
    topics = sorted({t.topic for t in turns})
    return {"summary": metrics(turns, memories),
            "by_topic": {topic: metrics([t for t in turns if t.topic == topic],
                                        [m for m in memories if m.topic == topic]) for topic in topics}}


def _stored(turn: TurnScore) -> list[str]:
    return [f"{e.get('event')}: {e.get('memory')}" for e in turn.events]


def worst_failures(convs: Sequence[ConversationScore], n: int = 5) -> dict[str, list[dict[str, Any]]]:
    """Up to ``n`` failures per category, the worst first (most of the expectation missed; ties
    in dataset order): the turn, what was expected, what the add stored, the memories after."""
    turns = [t for c in convs for t in c.turns]

    def row(t: TurnScore, **extra: Any) -> dict[str, Any]:
        return {"conversation": t.conversation, "turn": t.index, "say": t.say, "expected": t.expected,
                "stored": _stored(t), "error": t.error, **extra, "memories_after": t.memories_after}

    facts = [t for t in turns if t.kind == "fact" and (not t.ok_after or t.ok_at_end is False)]
    facts.sort(key=lambda t: -(len(t.missing_after) + len(t.missing_at_end))
               / max(1, len(t.expected["remember"]) + len(t.checked_at_end)))
    updates = [t for t in turns if t.kind == "update" and (not t.ok_after or not t.ok_at_end)]
    updates.sort(key=lambda t: -(len(t.missing_after) + len(t.lingering_after) + len(t.missing_at_end)
                                 + len(t.lingering_at_end)))
    chat = [t for t in turns if t.kind == "chitchat" and t.changed]
    chat.sort(key=lambda t: -sum(e.get("event") in CHANGES for e in t.events))
    invented = [m for c in convs for m in c.memories if m.invented]
    invented.sort(key=lambda m: -len(m.reasons))
    by_turn = {(t.conversation, t.index): t for t in turns}
    return {
        "fact_not_remembered": [row(t, missing_after=t.missing_after, missing_at_end=t.missing_at_end)
                                for t in facts[:n]],
        "update_not_resolved": [row(t, missing_after=t.missing_after, still_there_after=t.lingering_after,
                                    missing_at_end=t.missing_at_end, still_there_at_end=t.lingering_at_end)
                                for t in updates[:n]],
        "chitchat_changed": [row(t) for t in chat[:n]],
        "invented": [{"conversation": m.conversation, "memory": m.text, "reasons": m.reasons,
                      "first_seen_after": by_turn[(m.conversation, m.first_seen_turn)].say}
                     for m in invented[:n]],
    }
