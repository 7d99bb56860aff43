"""Which server a new connection on the gateway's port belongs to, from its first bytes.

One port serves two protocols: WebSocket upgrades go to websockets, every other HTTP request to
the HTTP application. websockets' HTTP parser takes GET requests only and answers one request
per connection, so the choice is made before either parser sees a byte, from the request head:
a head that asks to upgrade to ``websocket`` is a WebSocket; anything else — another method, a
plain GET, a head too large or not HTTP at all — is the HTTP application's to answer (or
refuse). Pure: bytes in, a decision out.
"""

from __future__ import annotations

import re
from typing import Literal

Route = Literal["websocket", "http"]
MAX_HEAD_BYTES = 16384  # more than this without the end of the head: not a WebSocket handshake
_END_OF_HEAD = b"\r\n\r\n"
_UPGRADE = re.compile(rb"^upgrade[ \t]*:(?P<value>[^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def route(head: bytes) -> Route | None:
    """The route for a connection whose first bytes are ``head``, or None to wait for more.

    Only a GET can open a WebSocket, so any other method is decided as soon as the request
    line shows it; a GET waits for the end of its head (the Upgrade header may come last)."""
    if not b"GET ".startswith(head[:4]):  # not a GET, nor the start of one
        return "http"
    end = head.find(_END_OF_HEAD)
    if end < 0:
        return "http" if len(head) > MAX_HEAD_BYTES else None
    return "websocket" if _asks_for_websocket(head[:end]) else "http"


def _asks_for_websocket(head: bytes) -> bool:
    for match in _UPGRADE.finditer(head):
        protocols = (token.strip().split(b"/")[0] for token in match.group("value").split(b","))
        if any(token.lower() == b"websocket" for token in protocols):
            return True
    return False
