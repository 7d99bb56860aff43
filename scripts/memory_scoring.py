"""Pure scoring for ``memstream eval-memory``: the dataset format, fact matching, the
invented-content rule and the aggregation. No I/O, no LLM, no event loop: the runner
(scripts/eval_memory.py) feeds it what ``add`` returned and what ``get_all`` listed.

Dataset (scripts/data/eval_memory.yaml)
---------------------------------------
``conversations``: each has an ``id``, a ``part`` (``tune``: may be looked at while changing
prompts; ``heldout``: only measured, never tuned on) and ``turns``. Each conversation is one
user. A turn is::

    say: "I'm Alice, I moved to Berlin and I'm vegetarian"   # the user's message
    kind: fact | update | chitchat
    topic: identity | family | work | health | diet | places | pets | hobbies | schedule |
           preferences | chitchat
    remember: {NAME: FACT, ...}   # facts the memories must hold after this turn
    forget: [NAME, ...]           # update turns: earlier facts this turn makes untrue

A FACT is a list of alternatives; it is in the memories when one memory matches one
alternative. An alternative is a keyword group ``{all: [...], any: [...], none: [...]}``: every
``all`` keyword is in the memory, at least one ``any`` keyword is (when ``any`` is given) and no
``none`` keyword is. ``none`` lets an old value's matcher ignore the memory that says it ended
(``{all: [coffee], none: [not, longer, quit]}`` matches "Drinks coffee every morning", not
"No longer drinks coffee").

Names are per conversation. ``forget`` names a fact that is current before the turn; a later
``remember`` of the same name replaces the earlier fact. The facts current after the last turn
are the ones expected "at end"; a value must not come back once forgotten.

Kinds: a *fact* turn has ``remember`` and no ``forget``; an *update* turn has ``forget`` (and
usually ``remember``, the new value); a *chitchat* turn has neither and topic ``chitchat``.

Matching
--------
Text and keywords go through the same tokenizer: accents stripped, lower case, "n't" read as
" not", words are runs of letters or runs of digits ("7am" is "7" "am"), number words become
digits ("two" is "2", "third" is "3", leading zeros dropped). A keyword is a word stem or a
phrase of them (``"no meat"``: consecutive words). A stem of four or more letters matches a word
that starts with it and has at most four more letters ("allerg" matches "allergic", "allergies";
"vegetarian" matches "Vegetarians"); a shorter stem matches only itself or itself plus "s"/"es"
("cat" matches "cats", not "catalog"; "law" matches "laws", not "lawyer"); a number matches only
the same number.

Invented content
----------------
Every distinct memory text a user's store held after some turn is checked against that
user's own turns up to that one (what the user had said when it was written). It is
*invented* when any of these holds:

1. it has a number the user never said. "1" is always allowed (an article is a one), and so are
   the years the runner passes (the prompt shows today's date, so "last year" may become one);
2. it has a capitalised word the user never said (case-insensitively, stems matched both ways):
   a name, place or brand out of nowhere. The first word and words after ``. ! ? : ;`` are not
   taken as names (sentence case), nor are "User", "Assistant", "OK" or one-letter words;
3. it has content words and none of them is in the user's turns. Content words are words of three
   or more letters that are neither function words nor the third-person framing the extraction
   prompt asks for ("user", "name", "likes", "lives", "works", "has", "years", ...), so
   "Likes swimming" is not grounded by "I like tea".

A paraphrase that keeps one said word ("Paris has become my home now") passes; that is the
price of a lexical rule, which cannot tell a paraphrase from an embellishment.

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

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from scripts.machine import percentile

Part = Literal["tune", "heldout"]
Kind = Literal["fact", "update", "chitchat"]
Topic = Literal["identity", "family", "work", "health", "diet", "places", "pets", "hobbies", "schedule",
                "preferences", "chitchat"]
PARTS: tuple[str, ...] = ("tune", "heldout")
CHANGES = frozenset({"ADD", "UPDATE", "DELETE"})
MAX_SUFFIX = 4  # letters a stem of 4+ letters may be followed by
SHORT_STEM = 4  # stems shorter than this match only themselves (and plurals)
ALWAYS_ALLOWED_NUMBERS = frozenset({"1"})


class DatasetError(ValueError):
    """The dataset file breaks the format; the message says where."""


# ---- dataset ------------------------------------------------------------------------------
class Group(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


Fact = tuple[Group, ...]  # alternatives


class Turn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    say: str
    kind: Kind
    topic: Topic
    remember: dict[str, Fact] = {}
    forget: tuple[str, ...] = ()
    note: str | None = None


class Conversation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    part: Part
    turns: tuple[Turn, ...]
    about: str = ""


class Dataset(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    conversations: tuple[Conversation, ...]
    version: int = 1

    def part(self, name: str) -> list[Conversation]:
        return [c for c in self.conversations if name in ("all", c.part)]


_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def parse_dataset(data: Any, *, source: str = "dataset") -> Dataset:
    """Parsed YAML/JSON → a checked ``Dataset``; ``DatasetError`` names the first problem."""
    try:
        dataset = msgspec.convert(data, Dataset)
    except msgspec.ValidationError as exc:
        raise DatasetError(f"{source}: {exc}") from None
    if not dataset.conversations:
        raise DatasetError(f"{source}: no conversations")
    seen: set[str] = set()
    for conv in dataset.conversations:
        where = f"{source}: conversation {conv.id!r}"
        if not _ID.match(conv.id):
            raise DatasetError(f"{where}: ids are lower-case letters, digits and '-'")
        if conv.id in seen:
            raise DatasetError(f"{where}: the id is used twice")
        seen.add(conv.id)
        if not conv.turns:
            raise DatasetError(f"{where}: no turns")
        current: set[str] = set()
        for index, turn in enumerate(conv.turns):
            _check_turn(turn, current, f"{where}, turn {index}")
            current.difference_update(turn.forget)
            current.update(turn.remember)
    return dataset


def _check_turn(turn: Turn, current: set[str], where: str) -> None:
    if not turn.say.strip():
        raise DatasetError(f"{where}: 'say' is empty")
    if (turn.kind == "chitchat") != (turn.topic == "chitchat"):
        raise DatasetError(f"{where}: chitchat turns, and only they, have topic 'chitchat'")
    if turn.kind == "chitchat" and (turn.remember or turn.forget):
        raise DatasetError(f"{where}: a chitchat turn neither remembers nor forgets")
    if turn.kind == "fact" and (not turn.remember or turn.forget):
        raise DatasetError(f"{where}: a fact turn has 'remember' and no 'forget'")
    if turn.kind == "update" and not turn.forget:
        raise DatasetError(f"{where}: an update turn names what it makes untrue in 'forget'")
    for name in turn.forget:
        if name not in current:
            raise DatasetError(f"{where}: forgets {name!r}, which is not a current fact (have {sorted(current)})")
    for name, fact in turn.remember.items():
        if not name.strip():
            raise DatasetError(f"{where}: a fact without a name")
        if not fact:
            raise DatasetError(f"{where}: fact {name!r} has no alternatives")
        for group in fact:
            if not group.all and not group.any:
                raise DatasetError(f"{where}: fact {name!r} has a group without 'all' or 'any'")
            for keyword in (*group.all, *group.any, *group.none):
                if not tokenize(keyword):
                    raise DatasetError(f"{where}: fact {name!r} has an empty keyword {keyword!r}")


def describe_fact(fact: Fact) -> str:
    """``allerg+peanut``, ``(vegetarian|veggie) !longer``, alternatives joined by `` OR ``."""
    out = []
    for group in fact:
        parts = []
        if group.all:
            parts.append("+".join(group.all))
        if group.any:
            parts.append("(" + "|".join(group.any) + ")")
        parts.extend(f"!{word}" for word in group.none)
        out.append(" ".join(parts))
    return " OR ".join(out)


# ---- matching -----------------------------------------------------------------------------
_TOKEN = re.compile(r"[a-z]+|[0-9]+")
_NUMBER_WORDS = {
    word: str(value) for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split())
}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
                      "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000"})
_NUMBER_WORDS.update({word: str(value) for value, word in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), start=1)})


def _fold(text: str) -> str:
    """Accents off (Zürich → Zurich), case kept."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers, "n't" as "not", number words as digits."""
    folded = _fold(text).lower().replace("n\u2019t", " not").replace("n't", " not")
    out = []
    for token in _TOKEN.findall(folded):
        if token.isdigit():
            token = str(int(token))
        out.append(_NUMBER_WORDS.get(token, token))
    return out


def stem_matches(stem: str, word: str) -> bool:
    """Does the keyword ``stem`` match the text's ``word``? (the rule in the module docstring)"""
    if stem.isdigit() or word.isdigit():
        return stem == word
    if len(stem) < SHORT_STEM:
        return word in (stem, stem + "s", stem + "es")
    return word.startswith(stem) and len(word) - len(stem) <= MAX_SUFFIX


def _related(a: str, b: str) -> bool:
    """Same word up to an ending, either way round (grounding checks: neither side is a keyword)."""
    return stem_matches(a, b) or stem_matches(b, a)


def keyword_in(keyword: str, words: Sequence[str]) -> bool:
    stems = tokenize(keyword)
    if not stems:
        return False
    span = len(stems)
    return any(all(stem_matches(s, words[i + j]) for j, s in enumerate(stems))
               for i in range(len(words) - span + 1))


def group_matches(group: Group, text: str) -> bool:
    words = tokenize(text)
    return (all(keyword_in(k, words) for k in group.all)
            and (not group.any or any(keyword_in(k, words) for k in group.any))
            and not any(keyword_in(k, words) for k in group.none))


def fact_matches(fact: Fact, text: str) -> bool:
    return any(group_matches(group, text) for group in fact)


def fact_present(fact: Fact, memories: Iterable[str]) -> bool:
    return any(fact_matches(fact, memory) for memory in memories)


# ---- invented content ---------------------------------------------------------------------
_FUNCTION_WORDS = frozenset("""
a an the and or but if then than so as at by for from in into on onto of off to up down out over under
with without about after before since until while during per via not no nor very too also just only still
even again already ever never always often sometimes usually really quite much many more most some any all
each every both other another such own same this that these those there here what which who whom whose when
where why how it its they them their theirs he him his she her hers we us our ours you your yours me my mine
myself i be am is are was were been being do does did done doing have has had having will would shall should
can could may might must get gets got getting now currently today per
""".split())
_FRAME_WORDS = frozenset("""
user users person name named names called call calls like likes liked love loves loved enjoy enjoys enjoyed
prefer prefers preferred want wants wanted live lives lived living work works worked working year years old
age aged fact facts memory
""".split())
NOT_NAMES = frozenset({"user", "users", "assistant", "ok", "okay"})
_WORD_WITH_CASE = re.compile(r"[A-Za-z]+")
_SENTENCE_END = tuple(".!?:;")


def content_words(text: str) -> list[str]:
    return [w for w in tokenize(text)
            if w.isalpha() and len(w) >= 3 and w not in _FUNCTION_WORDS and w not in _FRAME_WORDS]


def capitalised_words(text: str) -> list[str]:
    """Capitalised words that are not sentence-initial (names, places, brands)."""
    folded = _fold(text)
    out = []
    for match in _WORD_WITH_CASE.finditer(folded):
        word = match.group()
        before = folded[:match.start()].rstrip()
        if not before or before.endswith(_SENTENCE_END) or before.endswith("'") or before.endswith("\u2019"):
            continue  # sentence case, or the "s" of "Alice's"
        if len(word) > 1 and word[0].isupper() and word.lower() not in NOT_NAMES:
            out.append(word)
    return out


def invented_reasons(memory: str, said: Sequence[str], *, allowed_numbers: Iterable[str] = ()) -> list[str]:
    """Why ``memory`` names something the user's turns ``said`` never did ([] when it is grounded)."""
    said_words = [w for turn in said for w in tokenize(turn)]
    said_set = set(said_words)
    numbers = {w for w in said_words if w.isdigit()} | ALWAYS_ALLOWED_NUMBERS | set(allowed_numbers)
    reasons = []
    for number in dict.fromkeys(w for w in tokenize(memory) if w.isdigit()):
        if number not in numbers:
            reasons.append(f"number {number} never said")
    for name in dict.fromkeys(capitalised_words(memory)):
        words = tokenize(name)
        if not all(w in said_set or any(_related(w, s) for s in said_set) for w in words):
            reasons.append(f"name {name!r} never said")
    own = content_words(memory)
    if own and not any(w in said_set or any(_related(w, s) for s in said_set) for w in own):
        reasons.append("no content word in common with the user's turns")
    return reasons


# ---- scoring ------------------------------------------------------------------------------
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
