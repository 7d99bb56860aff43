"""Request bodies and query strings of the Mem0-compatible REST API, as msgspec types.

These types are what requests are decoded with, and what ``/openapi.json`` is generated from,
so the document cannot drift from the code. Fields mem0ai's clients send that memstream has no
use for (``output_format``, ``version``, ``rerank``, ...) are accepted and ignored, as Mem0's
platform ignores fields it does not know; a field memstream does use is checked, and a bad one
is answered with 400 naming it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Id = Annotated[str, Meta(min_length=1, max_length=256)]
Text = Annotated[str, Meta(max_length=65536)]
RequestId = Annotated[str, Meta(min_length=1, max_length=128,
                                description="memstream: a write with an id the journal already holds "
                                            "returns the first result and applies nothing")]
Filters = Annotated[dict[str, Any], Meta(description="Mem0 filters: scope ids (user_id, agent_id, run_id) "
                                                     "and metadata conditions, optionally under AND / OR / NOT")]
Limit = Annotated[int, Meta(ge=1, le=1000)]


class _Body(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class _Scoped(_Body, kw_only=True):
    user_id: Id | None = None
    agent_id: Id | None = None
    run_id: Id | None = None
    app_id: Annotated[str, Meta(max_length=256, description="not supported: refused when set")] | None = None

    def top_ids(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id, "app_id": self.app_id}


class Message(msgspec.Struct, omit_defaults=True):
    role: Annotated[str, Meta(min_length=1, max_length=32)]
    content: Text
    name: Annotated[str, Meta(max_length=128)] | None = None


class AddBody(_Scoped, kw_only=True):
    """``POST /v1/memories/``, ``POST /v3/memories/add/``."""

    messages: Annotated[list[Message], Meta(min_length=1, max_length=256)] | Annotated[str, Meta(min_length=1,
                                                                                                 max_length=65536)]
    filters: Filters | None = None
    metadata: dict[str, Any] | None = None
    infer: bool = True
    async_mode: Annotated[bool, Meta(description="true: answer at once with an event_id (Mem0's default); "
                                                 "false: wait and answer with the changes")] | None = None
    request_id: RequestId | None = None


class SearchBody(_Scoped, kw_only=True):
    """``POST /v1/memories/search/``, ``/v2/memories/search/``, ``/v3/memories/search/``."""

    query: Annotated[str, Meta(min_length=1, max_length=4096)]
    filters: Filters | None = None
    metadata: Annotated[dict[str, Any], Meta(description="v1: metadata equality filter")] | None = None
    top_k: Limit | None = None
    limit: Limit | None = None
    threshold: Annotated[float, Meta(ge=-1.0, le=1.0)] | None = None
    fallback: Annotated[bool, Meta(description="memstream: widen run -> agent -> user while too few "
                                               "results are found")] = False
    mode: Annotated[Literal["dense", "sparse", "hybrid"], Meta(
        description="memstream: ranking by meaning (dense), by keywords (sparse, BM25) or both fused "
                    "(hybrid); the server's retrieval.mode when absent")] | None = None


class ListBody(_Scoped, kw_only=True):
    """``POST /v2/memories/``, ``POST /v3/memories/`` (page and page_size may also be query parameters)."""

    filters: Filters | None = None
    page: Annotated[int, Meta(ge=1)] | None = None
    page_size: Limit | None = None
    as_of: Annotated[int | str, Meta(description="memstream: what was known after this journal seq "
                                                 "or at this ISO-8601 time")] | None = None


class UpdateBody(_Body, kw_only=True):
    """``PUT /v1/memories/{memory_id}/``: new text, new metadata, or both."""

    text: Annotated[str, Meta(min_length=1, max_length=65536)] | None = None
    metadata: dict[str, Any] | None = None
    request_id: RequestId | None = None


class WebhookCreate(_Body, kw_only=True):
    url: Annotated[str, Meta(min_length=1, max_length=2048, pattern=r"^https?://")]
    name: Annotated[str, Meta(min_length=1, max_length=256)]
    event_types: Annotated[list[str], Meta(max_length=8)] = msgspec.field(
        default_factory=lambda: ["memory_add", "memory_update", "memory_delete"])
    secret: Annotated[str, Meta(min_length=16, max_length=256,
                                description="memstream: the signing secret (made up when absent)")] | None = None
    start: Annotated[str, Meta(pattern="^(now|beginning)$",
                               description="memstream: deliver changes from now (default) or the "
                                           "journal's beginning")] = "now"


class WebhookUpdate(_Body, kw_only=True):
    url: Annotated[str, Meta(min_length=1, max_length=2048, pattern=r"^https?://")] | None = None
    name: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    event_types: Annotated[list[str], Meta(max_length=8)] | None = None
    is_active: bool | None = None


class ReplayBody(_Body, kw_only=True):
    owner: Annotated[str, Meta(min_length=1, max_length=300, description="one owner key (user:alice); "
                                                                         "absent: every dead owner")] | None = None


# ---- query strings (values arrive as strings; decoded leniently) ----
class ScopeQuery(_Scoped, kw_only=True):
    """``GET /v1/memories/``, ``DELETE /v1/memories/``: the scope as query parameters."""

    page: Annotated[int, Meta(ge=1)] | None = None
    page_size: Limit | None = None


class PageQuery(_Body, kw_only=True):
    page: Annotated[int, Meta(ge=1)] | None = None
    page_size: Limit | None = None
