"""Choosing websockets or the HTTP application from a connection's first bytes."""

from __future__ import annotations

import pytest

from gateway.web.sniff import MAX_HEAD_BYTES, route

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_a_websocket_upgrade_goes_to_websockets_once_its_head_is_complete():
    assert route(UPGRADE) == "websocket"
    for cut in range(1, len(UPGRADE)):
        assert route(UPGRADE[:cut]) is None, cut  # a GET waits: its Upgrade header may come later


@pytest.mark.parametrize("head", [
    b"POST /v3/memories/add/ HTTP/1.1\r\n",
    b"PUT /v1/memories/x/ HTTP/1.1\r\n",
    b"DELETE /v1/memories/?user_id=a HTTP/1.1\r\n",
    b"P",  # the start of POST/PUT/PATCH is already not a GET
    b"\x16\x03\x01\x02\x00",  # a TLS hello: not HTTP at all; the HTTP application refuses it
])
def test_any_other_method_goes_to_http_as_soon_as_it_shows(head: bytes):
    assert route(head) == "http"


def test_a_plain_get_goes_to_http():
    assert route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == "http"
    assert route(b"GET /v1/ping/ HTTP/1.1\r\nAuthorization: Token t\r\n\r\nGET / HTTP/1.1\r\n") == "http"


@pytest.mark.parametrize("header", [b"upgrade: WebSocket", b"UPGRADE:websocket", b"Upgrade: h2c, websocket",
                                    b"Upgrade: websocket/13"])
def test_the_upgrade_header_is_read_as_http_defines_it(header: bytes):
    assert route(b"GET / HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n") == "websocket"


def test_websocket_named_elsewhere_is_not_an_upgrade():
    assert route(b"GET /websocket HTTP/1.1\r\nX-Upgrade: websocket\r\nUpgrade: h2c\r\n\r\n") == "http"
    assert route(b"GET / HTTP/1.1\r\nX-Note: Upgrade: websocket\r\n\r\n") == "http"


def test_a_head_that_never_ends_is_given_to_http_to_refuse():
    endless = b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * MAX_HEAD_BYTES
    assert route(endless[:MAX_HEAD_BYTES]) is None
    assert route(endless) == "http"
