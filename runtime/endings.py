"""Facts that say something ended ("Pixel passed away", "Left the orchestra", "No longer drinks
coffee"), and the stored memories they end. Pure: text in, ids out.

Why a rule and not the LLM: the embedded 0.5B model extracts such facts well, but asked which
stored memories they end it answers near chance (on a probe of 32 memory/turn pairs its yes/no
probabilities did not separate the memories that ended from those that stay), and its four-way
decision ends at most one memory per fact ("Pixel passed away" kept "Has a cat named Pixel").
An ending names what ended, so a stored memory that is close in meaning *and* names the same
thing is ended with it; the rest stay. A fact that ends nothing goes on to the usual decision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from runtime.vectors.port import Hit

_WORD = re.compile(r"[\w']+", re.UNICODE)

# phrases that state an end: the fact is about something that no longer holds
_ENDING = re.compile(
    r"\b(no longer|not any ?more|anymore|no more|stopped|stops|quit|quits|left|leaves|sold|gave up|gave away|"
    r"given up|died|dead|passed away|done|ended|broke up|lost|retired|moved out|moved away|ex)\b",
    re.IGNORECASE,
)

# words that say *that* something ended, when, or how; what is left names *what* ended
_NOT_THE_THING = frozenset(
    """no longer not any anymore more stopped stop stops quit quits left leave leaves sold sell gave give given
    up away died dead passed pass done with ended end broke lost retired moved out ex just now last week weeks
    month months year years ago recently today yesterday sadly finally for good too also has have had is are
    was were be been am does do did doing the a an and or but of in on at to from by my his her their our
    user user's works working work lives living live plays playing play goes going drinks drinking drink eats
    eating eat takes taking uses using owns keeps got gets into because so very since don't doesn't didn't
    can't won't isn't i'm i've i'll we're we've""".split()
)


def is_ending(fact: str) -> bool:
    return _ENDING.search(fact) is not None


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def named_things(text: str) -> set[str]:
    """The stems of the words that name things (not the ending words, times or common verbs)."""
    words = (w.lower().strip("'") for w in _WORD.findall(text))
    return {_stem(w) for w in words if len(w) > 2 and w not in _NOT_THE_THING}


def _same_thing(a: str, b: str) -> bool:
    """Stems name the same thing: equal, or one starts the other and is 4+ letters (surf, surfboard)."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 4 and long_.startswith(short)


def ended_memories(fact: str, near: Sequence[Hit], *, threshold: float) -> list[Hit]:
    """The memories an ending fact ends: close in meaning (score ≥ threshold) and naming a thing
    the fact names. Best match first. Empty when the fact is not an ending or names nothing stored."""
    if not is_ending(fact):
        return []
    things = named_things(fact)
    if not things:
        return []
    ended = [hit for hit in near if hit.score >= threshold
             and any(_same_thing(t, s) for t in things for s in named_things(hit.record.text))]
    return sorted(ended, key=lambda hit: -hit.score)


_CLAUSE = re.compile(r"[^.,;:!?\n]+")
_JOINERS = re.compile(r"\b(?:so|but|and then|because)\b", re.IGNORECASE)


def ending_clauses(said: str) -> list[str]:
    """The clauses of what the user said that state an end ("I stopped playing the cello", "so I
    left the orchestra too"): the evidence extraction sometimes drops when it keeps the new half."""
    clauses = (c.strip() for part in _CLAUSE.findall(said) for c in _JOINERS.split(part))
    return [c for c in clauses if c and is_ending(c) and named_things(c)]
