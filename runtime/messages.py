"""Checking what callers pass to ``add`` and ``update``: the messages, turned into a list of chat
messages, and the metadata; anything else is a clear error."""

from __future__ import annotations

import json
from typing import Any

from runtime.errors import InvalidRequest
from runtime.model import Message

ROLES = {"system", "user", "assistant", "tool"}
MAX_MESSAGE_CHARS = 32_000
MAX_MESSAGES = 200
MAX_METADATA_BYTES = 16_384
MAX_METADATA_DEPTH = 32


def normalize_messages(messages: Any) -> list[Message]:
    """Accept a string, one ``{"role", "content"}`` dict, or a list of those (Mem0's shapes)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    elif isinstance(messages, (dict, Message)):
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty string, a message dict, or a list of message dicts")
    if len(messages) > MAX_MESSAGES:
        raise InvalidRequest(f"at most {MAX_MESSAGES} messages per add (got {len(messages)})")
    out: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            out.append(item)
            continue
        if not isinstance(item, dict):
            raise InvalidRequest(f"messages[{index}] must be a dict with 'role' and 'content'")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise InvalidRequest(f"messages[{index}].role must be one of {sorted(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise InvalidRequest(f"messages[{index}].content must be a string")
        if len(content) > MAX_MESSAGE_CHARS:
            raise InvalidRequest(f"messages[{index}].content is longer than {MAX_MESSAGE_CHARS} characters")
        name = item.get("name")
        out.append(Message(role=role, content=content, name=name if isinstance(name, str) else None))
    if not any(m.content.strip() for m in out if m.role != "system"):
        raise InvalidRequest("messages contain no user or assistant text")
    return out


def transcript(messages: list[Message]) -> str:
    """The conversation as the extraction prompt shows it (system messages are instructions, not facts)."""
    return "\n".join(f"{m.role}: {m.content.strip()}" for m in messages if m.role != "system" and m.content.strip())


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidRequest("metadata must be an object with string keys")
    if _depth(metadata) > MAX_METADATA_DEPTH:  # stores refuse to read back what nests deeper (serde's limit)
        raise InvalidRequest(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")
    try:
        size = len(json.dumps(metadata))
    except (TypeError, ValueError):
        raise InvalidRequest("metadata must be JSON-serializable") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(f"metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}")
    return metadata


def _depth(value: Any) -> int:
    """How deep lists and objects nest (iterative: the input may be hostile)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
