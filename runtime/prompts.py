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
    (
        "user: I don't smoke anymore, these days I only drink water.",
        '{"facts": ["No longer smokes", "Drinks only water"]}',
    ),
)

DECISION_INSTRUCTIONS = """\
You keep a user's memory up to date. You get the existing memories, each with an id, and \
new facts. Answer every new fact, in order, with one event:
- ADD: the fact is new and every existing memory stays true. Use id "new".
- UPDATE: the fact and an existing memory cannot both be true now (another city, another \
job, another diet): the fact replaces that memory. Use that memory's id.
- DELETE: the fact only says an existing memory is no longer true. Use that memory's id.
- NONE: an existing memory already says the same thing. Use that memory's id.
A fact that adds a detail about the same person or thing is an ADD. When unsure, answer ADD.
Answer with JSON only: {"decisions": [{"fact": "...", "event": "...", "id": "..."}]}."""

DECISION_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        'Existing memories:\n[{"id": "0", "text": "Lives in Berlin"}, {"id": "1", "text": "Likes rock music"}]\n'
        'New facts:\n["Lives in Paris", "Likes jazz"]',
        '{"decisions": [{"fact": "Lives in Paris", "event": "UPDATE", "id": "0"}, '
        '{"fact": "Likes jazz", "event": "ADD", "id": "new"}]}',
    ),
    (
        'Existing memories:\n[{"id": "0", "text": "Is vegetarian"}, {"id": "1", "text": "Has a dog named Rex"}, '
        '{"id": "2", "text": "Works as a nurse"}]\n'
        'New facts:\n["Is a vegetarian", "No longer has a dog", "Has a cat named Mia", "Works as a teacher"]',
        '{"decisions": [{"fact": "Is a vegetarian", "event": "NONE", "id": "0"}, '
        '{"fact": "No longer has a dog", "event": "DELETE", "id": "1"}, '
        '{"fact": "Has a cat named Mia", "event": "ADD", "id": "new"}, '
        '{"fact": "Works as a teacher", "event": "UPDATE", "id": "2"}]}',
    ),
    (
        'Existing memories:\n[{"id": "0", "text": "Is vegetarian"}, {"id": "1", "text": "Drinks coffee"}]\n'
        'New facts:\n["Is vegan", "Drinks green tea"]',
        '{"decisions": [{"fact": "Is vegan", "event": "UPDATE", "id": "0"}, '
        '{"fact": "Drinks green tea", "event": "ADD", "id": "new"}]}',
    ),
    (
        'Existing memories:\n[{"id": "0", "text": "Has a daughter named Emma"}, {"id": "1", "text": "Name is Tom"}]\n'
        'New facts:\n["Emma is 7 years old", "Takes Emma to school every morning"]',
        '{"decisions": [{"fact": "Emma is 7 years old", "event": "ADD", "id": "new"}, '
        '{"fact": "Takes Emma to school every morning", "event": "ADD", "id": "new"}]}',
    ),
)


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


def decision_schema(facts: list[str], candidates: list[list[str]]) -> dict[str, Any]:
    """One answer per fact, in order (``prefixItems``): the constrained decoder writes each fact
    itself, so the model cannot skip one, and each answer's id is an enum of the small ids of that
    fact's own neighbours - ADD goes with "new", a change with a shown id, so no id can be invented."""
    events = ["UPDATE", "DELETE", "NONE"]

    def answer(fact: str, ids: list[str]) -> dict[str, Any]:
        def shape(event: list[str], id_: list[str]) -> dict[str, Any]:
            return {"type": "object",
                    "properties": {"fact": {"type": "string", "enum": [fact]},
                                   "event": {"type": "string", "enum": event},
                                   "id": {"type": "string", "enum": id_}},
                    "required": ["fact", "event", "id"], "additionalProperties": False}
        return {"anyOf": [shape(["ADD"], ["new"]), shape(events, ids)]}

    return {
        "type": "object",
        "properties": {
            "decisions": {
                "type": "array",
                "prefixItems": [answer(fact, ids) for fact, ids in zip(facts, candidates)],
                "items": False,
                "minItems": len(facts),
                "maxItems": len(facts),
            }
        },
        "required": ["decisions"],
        "additionalProperties": False,
    }


def render_extraction(conversation: str) -> list[dict[str, str]]:
    """No date: the 0.5B default copied "Today is ..." into facts ("Is 2026-12-03"), and relative
    times ("last month") stay as the user said them."""
    return _render(EXTRACTION_INSTRUCTIONS, EXTRACTION_EXAMPLES, conversation)


def render_decision(existing: list[dict[str, str]], facts: list[str]) -> list[dict[str, str]]:
    body = (f"Existing memories:\n{json.dumps(existing, ensure_ascii=False)}\n"
            f"New facts:\n{json.dumps(facts, ensure_ascii=False)}")
    return _render(DECISION_INSTRUCTIONS, DECISION_EXAMPLES, body)


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
