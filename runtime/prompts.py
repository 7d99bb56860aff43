"""Prompts as pure functions: ``render(...) -> chat messages``.

Layout rule: the static instructions and few-shot examples come first and are the same
bytes for every user and every day, so vLLM's prefix cache can reuse them; everything
that varies (the conversation, the memories, today's date where a prompt uses it) comes last.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

EXTRACTION_INSTRUCTIONS = """\
You extract facts about the user from a conversation, for a personal assistant's long-term \
memory: what the user says about themselves (name, age, family, work, home, health, diet, pets, \
hobbies, routines, plans, likes and dislikes). Rules:
- One short fact per item, in the third person.
- Keep names, places and numbers exactly as the user said them.
- When the user says something changed or stopped, state how it is now.
- Greetings, thanks, questions to the assistant and their answers are not facts about the user.
- Only what this user said. Never guess, never add details, never repeat the examples.
- If there is nothing worth remembering, answer {"facts": []}.
Answer with JSON only: {"facts": ["...", "..."]}."""

# No example fact appears in the instructions: a 0.5B model copies quoted phrases into its answers
EXTRACTION_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("user: Hi! How are you today?", '{"facts": []}'),
    (
        "user: I'm Tom, I work as a nurse in Lyon and I love hiking.",
        '{"facts": ["Name is Tom", "Works as a nurse", "Lives in Lyon", "Loves hiking"]}',
    ),
    ("user: What's a good book for the weekend?", '{"facts": []}'),
    (
        "user: My sister Ana is 12. Our dog Rex died, and we don't have a car anymore.",
        '{"facts": ["Has a sister named Ana", "Ana is 12 years old", "Dog Rex died", "No longer has a car"]}',
    ),
)


_CHANGES = """Usually it is: another topic, another detail, another person or pet. It is no longer \
true only when the same thing gets a new value (another city, another job, another diet) or \
ended (stopped, quit, left, sold, died).
Answer with JSON only: {"still_true": "yes"} or {"still_true": "no"}."""

AFTER_FACT_INSTRUCTIONS = ("You keep a user's memory up to date. You get one stored memory about the user and one "
                           "new fact about the user. Question: is the stored memory still true after the new "
                           "fact? " + _CHANGES)
AFTER_TURN_INSTRUCTIONS = ("You keep a user's memory up to date. You get one stored memory about the user and what "
                           "the user just said. Question: is the stored memory still true after what the user "
                           "said? " + _CHANGES)

# (memory, new fact, what the user said, still true?). At least as many "yes" as "no": the 0.5B
# default leans to "no", and a wrong "no" loses a memory
_VERDICT_CASES = (
    ("Lives in Berlin", "Lives in Paris", "We moved to Paris in May", "no"),
    ("Likes rock music", "Likes jazz", "I really like jazz too", "yes"),
    ("Has a dog named Rex", "Rex died", "Our dog Rex died last night", "no"),
    ("Name is Tom", "Wife is named Ana", "My wife Ana is a doctor", "yes"),
    ("Has a daughter named Emma", "Emma is 7 years old", "Emma turned 7 today", "yes"),
    ("Works as a nurse", "Works as a teacher", "I changed careers, I teach maths now", "no"),
    ("Has a dog named Rex", "Lives in Lyon", "I live in Lyon", "yes"),
    ("Plays football on Sundays", "No longer plays football", "I gave up football after my knee injury", "no"),
    ("Has asthma", "Uses an inhaler every day", "I use my inhaler every morning", "yes"),
    ("Is vegetarian", "Is vegan", "I'm fully vegan since March", "no"),
    ("Name is Tom", "Has a cat named Mia", "We have a cat called Mia", "yes"),
    ("Drinks coffee", "Drinks green tea", "I also like green tea", "yes"),
)


def _verdict_examples(label: str, column: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"Memory: {json.dumps(case[0])}\n{label}: {json.dumps(case[column])}",
                  json.dumps({"still_true": case[3]})) for case in _VERDICT_CASES)


AFTER_FACT_EXAMPLES = _verdict_examples("New fact", 1)
AFTER_TURN_EXAMPLES = _verdict_examples("User said", 2)


def _render(instructions: str, examples: tuple[tuple[str, str], ...], body: str) -> list[dict[str, str]]:
    """Instructions and examples first (the static prefix vLLM's cache shares across users),
    then the call's own content."""
    messages = [{"role": "system", "content": instructions}]
    for question, answer in examples:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": body})
    return messages


def facts_schema(max_facts: int, max_chars: int) -> dict[str, Any]:
    """Bounded on purpose: a schema without limits lets a small model loop until max_tokens."""
    return {
        "type": "object",
        "properties": {
            "facts": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": max_chars},
                "maxItems": max_facts,
            }
        },
        "required": ["facts"],
        "additionalProperties": False,
    }


def verdict_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"still_true": {"type": "string", "enum": ["yes", "no"]}},
            "required": ["still_true"], "additionalProperties": False}


def render_after_fact(memory: str, fact: str) -> list[dict[str, str]]:
    """Is one stored memory still true after one new fact? (Both last: the instructions and
    examples are the shared prefix.)"""
    body = f"Memory: {json.dumps(memory, ensure_ascii=False)}\nNew fact: {json.dumps(fact, ensure_ascii=False)}"
    return _render(AFTER_FACT_INSTRUCTIONS, AFTER_FACT_EXAMPLES, body)


def render_after_turn(memory: str, said: str) -> list[dict[str, str]]:
    """Is one stored memory still true after what the user just said?"""
    body = f"Memory: {json.dumps(memory, ensure_ascii=False)}\nUser said: {json.dumps(said, ensure_ascii=False)}"
    return _render(AFTER_TURN_INSTRUCTIONS, AFTER_TURN_EXAMPLES, body)


def render_extraction(conversation: str) -> list[dict[str, str]]:
    """No date: the 0.5B default copied "Today is ..." into facts ("Is 2026-12-03"), and relative
    times ("last month") stay as the user said them."""
    return _render(EXTRACTION_INSTRUCTIONS, EXTRACTION_EXAMPLES, conversation)


RELATIONS_INSTRUCTIONS = """\
You build a knowledge graph about the user from a conversation. List the relations it \
states as (source, relationship, destination) triples. Rules:
- Call the user "I". Other entities are short names: people, places, pets, companies, things.
- relationship is a short lowercase verb phrase in snake_case: lives_in, works_at, has_pet, likes.
- Only relations stated in the conversation. Never guess, never invent.
- If the user says a relation is no longer true, give it with "ended": true.
- If there is nothing to add, answer {"relations": []}.
Answer with JSON only: {"relations": [{"source": "...", "relationship": "...", "destination": "..."}]}."""

RELATIONS_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("user: Hi there!", '{"relations": []}'),
    (
        "user: I'm Tom, I work at Airbus in Toulouse and my sister Ana is a doctor.",
        '{"relations": [{"source": "I", "relationship": "is_named", "destination": "Tom"}, '
        '{"source": "I", "relationship": "works_at", "destination": "Airbus"}, '
        '{"source": "Airbus", "relationship": "located_in", "destination": "Toulouse"}, '
        '{"source": "I", "relationship": "has_sister", "destination": "Ana"}]}',
    ),
    (
        "user: We gave our cat Luna away, I don't have a cat anymore.",
        '{"relations": [{"source": "I", "relationship": "has_pet", "destination": "Luna", "ended": true}]}',
    ),
)


def relations_schema(max_items: int, max_chars: int) -> dict[str, Any]:
    """Bounded like the facts schema (items, name and relationship lengths): an unbounded one lets a
    small model loop until max_tokens."""
    name = {"type": "string", "minLength": 1, "maxLength": max_chars}
    return {
        "type": "object",
        "properties": {
            "relations": {
                "type": "array",
                "maxItems": max_items,
                "items": {
                    "type": "object",
                    "properties": {
                        "source": name,
                        "relationship": {"type": "string", "minLength": 1, "maxLength": 40},
                        "destination": name,
                        "ended": {"type": "boolean"},
                    },
                    "required": ["source", "relationship", "destination"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["relations"],
        "additionalProperties": False,
    }


def render_relations(conversation: str, today: dt.date) -> list[dict[str, str]]:
    """Static instructions and examples first (shared prefix), the conversation last."""
    return _render(RELATIONS_INSTRUCTIONS, RELATIONS_EXAMPLES, f"Today is {today.isoformat()}.\n{conversation}")
