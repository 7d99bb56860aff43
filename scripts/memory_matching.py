"""Fact matching and the invented-content rule of ``memstream eval-memory``: does a memory's text
hold a fact of the dataset (``scripts.memory_dataset``), and does it name something the user
never said. Pure: words in, verdicts out.

A fact (``Fact``) is a list of alternatives, each a keyword group (``Group``); how they are
written, and what each part of a group asks of a memory, is the dataset's format.

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
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import msgspec

MAX_SUFFIX = 4  # letters a stem of 4+ letters may be followed by
SHORT_STEM = 4  # stems shorter than this match only themselves (and plurals)
ALWAYS_ALLOWED_NUMBERS = frozenset({"1"})


# ---- facts ----------------------------------------------------------------------------------
class Group(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


Fact = tuple[Group, ...]  # alternatives


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
