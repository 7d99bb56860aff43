"""What a client connection needs of the gateway process that accepted it.

``gateway.server.Gateway`` is the one implementation; a connection is typed by this protocol
rather than by that class, so the server imports its connections and never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.dispatch import Dispatcher
from gateway.fanout import Fanout
from gateway.metrics import GatewayMetrics
from runtime.config import Config


class Host(Protocol):
    config: Config
    secret: str  # the token signing secret
    clock: Callable[[], float]  # the wall clock tokens expire by
    dispatcher: Dispatcher
    fanout: Fanout
    metrics: GatewayMetrics
