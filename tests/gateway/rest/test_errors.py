"""Failures as HTTP statuses and JSON bodies that name the field at fault."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from yarl import URL

from gateway.rest.errors import FieldError, error_reply, field_of_validation, validation_error
from gateway.rest.paging import links, window
from runtime.errors import (BackendUnavailable, Forbidden, InvalidRequest, LLMOutputError, MemstreamError, NotFound,
                            Overloaded, Unauthenticated)


class Body(msgspec.Struct):
    messages: list[str]
    limit: Annotated[int, msgspec.Meta(ge=1)] = 10


@pytest.mark.parametrize("raw, field", [
    (b'{"messages": [1]}', "messages[0]"),
    (b'{"limit": 1}', "messages"),  # the missing field is named
    (b'{"messages": [], "limit": 0}', "limit"),
    (b"[1]", "body"),
])
def test_validation_errors_name_their_field(raw: bytes, field: str):
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=Body)
    error = validation_error(caught.value)
    assert error.field == field and error.code == "invalid_request"
    assert "$." not in str(error)  # the path is in ``field``, the message reads as prose


def test_field_of_a_nested_missing_field():
    assert field_of_validation("Object missing required field `role` - at `$.messages[0]`") == "messages[0].role"


@pytest.mark.parametrize("error, status", [
    (InvalidRequest("x"), 400), (FieldError("f", "x"), 400), (Unauthenticated("x"), 401), (Forbidden("x"), 403),
    (NotFound("x"), 404), (Overloaded("x"), 429), (LLMOutputError("x"), 502),
    (BackendUnavailable("x", backend="journal"), 503), (MemstreamError("secret detail"), 500),
])
def test_statuses(error: MemstreamError, status: int):
    got, body, headers = error_reply(error)
    assert got == status and body.code == error.code
    assert ("Retry-After" in headers) == (status == 429)
    if status == 500:
        assert "secret" not in body.detail


def test_paging_window_and_links():
    assert window(None, None) == (1, 100, 100, 0)
    assert window(3, 20) == (3, 20, 20, 40)
    url = URL("http://h/v3/memories/?page=2&page_size=10")
    following, preceding = links(url, 2, 10, 25)
    assert following == "http://h/v3/memories/?page=3&page_size=10"
    assert preceding == "http://h/v3/memories/?page=1&page_size=10"
    assert links(url, 3, 10, 25)[0] is None and links(URL("http://h/x"), 1, 10, 0) == (None, None)
