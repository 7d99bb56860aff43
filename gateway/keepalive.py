"""WebSocket connections whose keepalive pings never touch the global ``random`` module.

websockets sends a keepalive ping every ``ping_interval`` and, when ``ping()`` is given no
payload, makes one up from ``random.getrandbits`` — the process-wide generator, from whatever
thread runs the event loop. A payload only has to differ from the other pings still waiting
for their pong, so a per-connection counter is enough, and then the gateway and
``MemoryClient`` leave the global generator alone: nothing they do shifts the random
sequence of the application (or test) they run in, whose seeded draws stay reproducible —
Hypothesis, for one, fails a test whose global random state moves while it draws an example.
"""

from __future__ import annotations

import itertools
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection

PING_PAYLOAD_BYTES = 8  # a counter that never wraps within a connection's life


class CountedPings:
    """Mixin for websockets' asyncio connections: a ping without a payload carries the next
    number of this connection's counter (websockets' keepalive calls ``ping()`` without one)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._ping_numbers = itertools.count(1)

    async def ping(self, data: str | bytes | bytearray | memoryview | None = None) -> Any:
        if data is None:
            data = next(self._ping_numbers).to_bytes(PING_PAYLOAD_BYTES, "big")
        return await super().ping(data)  # type: ignore[misc]


class GatewayConnection(CountedPings, ServerConnection):
    """The gateway's server side of a WebSocket (``serve(create_connection=...)``)."""


class ClientSocket(CountedPings, ClientConnection):
    """``MemoryClient``'s side of a WebSocket (``connect(create_connection=...)``)."""


__all__ = ["ClientSocket", "CountedPings", "GatewayConnection"]
