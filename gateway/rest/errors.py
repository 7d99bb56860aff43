"""What the REST API answers when a request fails: an HTTP status and a JSON body
``{"detail", "code", "field"}``.

``detail`` is what mem0ai's client shows its caller (it reads that key); ``code`` is memstream's
stable error code, the same as the WebSocket's ``error{code}``; ``field`` names the part of the
request at fault when one does. Pure: exceptions in, (status, body) out.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from runtime.errors import (
    BackendUnavailable,
    Forbidden,
    InvalidRequest,
    LLMOutputError,
    MemstreamError,
    NotFound,
    Overloaded,
    Unauthenticated,
)

OVERLOADED_RETRY_AFTER_S = 1
_STATUS: tuple[tuple[type[MemstreamError], int], ...] = (
    (InvalidRequest, 400), (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Overloaded, 429),
    (LLMOutputError, 502), (BackendUnavailable, 503),
)
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")


class FieldError(InvalidRequest):
    """A request that is wrong in one named place (``field``: a dotted path such as
    ``filters.AND[0].user_id``, or a query parameter's name)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """The body of every 4xx and 5xx answer."""

    detail: str
    code: str
    field: str | None = None


def field_of_validation(message: str, where: str = "body") -> str:
    """The request part a msgspec validation message points at: ``$.messages[0].content`` →
    ``messages[0].content``; a missing field names itself; the whole document names ``where``."""
    at = _AT.search(message)
    path = at.group("path").lstrip(".") if at else ""
    missing = _MISSING.search(message)
    if missing:
        path = f"{path}.{missing.group('name')}" if path else missing.group("name")
    return path or where


def validation_error(exc: msgspec.ValidationError, where: str = "body") -> FieldError:
    message = str(exc)
    return FieldError(field_of_validation(message, where), _AT.sub("", message))


def status_of(exc: MemstreamError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_reply(exc: MemstreamError) -> tuple[int, ErrorBody, dict[str, str]]:
    """(status, body, extra headers) for a typed error; internal errors never leak their text."""
    status = status_of(exc)
    headers = {"Retry-After": str(OVERLOADED_RETRY_AFTER_S)} if status == 429 else {}
    if status == 500:
        return status, ErrorBody(detail="internal error (logged on the server)", code="internal"), headers
    field = exc.field if isinstance(exc, FieldError) else None
    return status, ErrorBody(detail=str(exc), code=exc.code, field=field), headers


def http_error(status: int, reason: str) -> ErrorBody:
    """A failure aiohttp itself detected (no such route, wrong method, body too large)."""
    codes: dict[int, str] = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    return ErrorBody(detail=reason, code=codes.get(status, "invalid_request"))


def describe(value: Any) -> str:
    """A short, safe rendering of a caller's value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
