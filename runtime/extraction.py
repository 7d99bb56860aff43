"""LLM calls with validation and retry, and fact extraction (LLM call 1) on its own.

Shared by the engine's ``add`` and by batch ingestion, which extracts facts upstream of the
per-owner reconciliation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from runtime import reconcile
from runtime import relations as graph_rules
from runtime.config import GraphPolicy, MemoryPolicy
from runtime.errors import LLMOutputError
from runtime.llms import LLM
from runtime.messages import transcript
from runtime.model import Message
from runtime.prompts import facts_schema, relations_schema, render_extraction, render_relations

T = TypeVar("T")
log = structlog.get_logger("memstream.llm")


async def ask(llm: LLM, name: str, messages: list[dict[str, str]], schema: dict[str, Any],
              parse: Callable[[str], T], *, retries: int) -> T:
    """One structured LLM call, re-asked while the answer is invalid, then a typed error."""
    attempts = retries + 1
    last_error: LLMOutputError | None = None
    for attempt in range(1, attempts + 1):
        raw = await llm.complete_json(messages, schema, name=name)
        try:
            return parse(raw)
        except LLMOutputError as exc:
            last_error = exc
            log.warning("llm_output_rejected", call=name, attempt=attempt, reason=str(exc), raw=raw[:300])
    raise LLMOutputError(f"{name}: the LLM gave invalid output {attempts} times; last problem: {last_error}")


async def extract_facts(llm: LLM, messages: list[Message], policy: MemoryPolicy) -> list[str]:
    conversation = transcript(messages)
    return await ask(
        llm, "facts", render_extraction(conversation), facts_schema(policy.max_facts, policy.max_fact_chars),
        lambda raw: reconcile.parse_facts(raw, max_facts=policy.max_facts, max_chars=policy.max_fact_chars,
                                          conversation=conversation if policy.require_grounding else None),
        retries=policy.llm_retries,
    )


async def extract_relations(llm: LLM, messages: list[Message], owner: str, policy: GraphPolicy, retries: int,
                            today: dt.date, *, grounded: bool = True) -> list[graph_rules.Triple]:
    """Graph memory's LLM call: (source, relationship, destination) triples, "I" mapped to the owner."""
    conversation = transcript(messages)
    return await ask(
        llm, "relations", render_relations(conversation, today),
        relations_schema(policy.max_relations, policy.max_name_chars),
        lambda raw: graph_rules.parse_relations(raw, owner=owner, max_items=policy.max_relations,
                                                max_chars=policy.max_name_chars,
                                                conversation=conversation if grounded else None),
        retries=retries,
    )
