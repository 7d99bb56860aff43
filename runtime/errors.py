"""One error root for everything a memstream user can see.

Third-party exceptions (sqlite3, psycopg, qdrant, openai, vllm) are translated at the
adapter boundary into one of these leaves, so callers catch conditions, not libraries.
Every leaf has a stable ``code`` that the wire protocol sends as ``error{code}``.
"""

from __future__ import annotations


class MemstreamError(Exception):
    """Root of all memstream errors."""

    code = "internal"


class ConfigError(MemstreamError):
    """The configuration (file, environment or code) is invalid; the message names the field."""

    code = "bad_config"


class InvalidRequest(MemstreamError):
    """The caller sent something malformed: no scope id, bad messages, a bad filter, ..."""

    code = "invalid_request"


class NotFound(MemstreamError):
    """The memory id (or owner) does not exist for this tenant."""

    code = "not_found"


class LLMOutputError(MemstreamError):
    """The LLM kept answering with output that is not valid for the schema, after retries."""

    code = "llm_output_invalid"


class BackendUnavailable(MemstreamError):
    """A backend (LLM endpoint, embedder, vector store, graph store, journal) cannot be reached.

    ``committed_seq`` is set when the journal already holds the change: it is durable and
    the projection will catch up, so the caller may retry with the same ``request_id``.
    """

    code = "unavailable"

    def __init__(self, message: str, *, backend: str, committed_seq: int | None = None):
        super().__init__(message)
        self.backend = backend
        self.committed_seq = committed_seq


class Overloaded(MemstreamError):
    """A bounded queue is full: the caller should back off and retry."""

    code = "overloaded"


class Forbidden(MemstreamError):
    """The credentials do not allow this operation on this tenant or owner."""

    code = "forbidden"


class Unauthenticated(MemstreamError):
    """No valid credentials: the token is missing, forged, expired or not yet sent."""

    code = "unauthenticated"
