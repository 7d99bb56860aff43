"""What a client connection (WebSocket or plain HTTP) needs of the gateway process that accepted it.

``gateway.server.Gateway`` is the one implementation; ``gateway.connection`` and ``gateway.web``
are typed by this protocol rather than by that class, so the server imports them and never the
other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.dispatch import Dispatcher
from gateway.fanout import Fanout
from gateway.metrics import GatewayMetrics
from runtime.config import Config, GatewayConfig


class Host(Protocol):
    config: Config
    settings: GatewayConfig  # config.gateway
    secret: str  # the token signing secret
    clock: Callable[[], float]  # the wall clock tokens expire by
    dispatcher: Dispatcher
    fanout: Fanout
    metrics: GatewayMetrics

    def page(self, path: str) -> tuple[str, str] | None:
        """The body and content type of the plain-HTTP page at ``path`` (viewer, metrics, ...), or None."""
