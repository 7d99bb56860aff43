"""The dataset of ``memstream eval-memory``: its format, parsed and checked. A malformed file
fails with ``DatasetError`` naming the conversation and turn at fault.

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
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from scripts.memory_matching import Fact, tokenize

Part = Literal["tune", "heldout"]
Kind = Literal["fact", "update", "chitchat"]
Topic = Literal["identity", "family", "work", "health", "diet", "places", "pets", "hobbies", "schedule",
                "preferences", "chitchat"]
PARTS: tuple[str, ...] = ("tune", "heldout")


class DatasetError(ValueError):
    """The dataset file breaks the format; the message says where."""


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
