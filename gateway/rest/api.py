"""The REST API as data: a table of routes, each with its body, query and reply types.

The table is what the aiohttp application serves (``gateway.web.app``) and what the OpenAPI
document is generated from (``gateway.rest.openapi``). A handler receives a ``Call``: the
caller's verified grant, the decoded body and query, the path parameters and the services
(the same ``Dispatcher`` as the WebSocket, so the same authorization rules apply).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.auth import Grant
from gateway.dispatch import Dispatcher, MemoryBackend
from gateway.rest.background import BackgroundAdds
from runtime.config import Config

ORGANIZATION = "memstream"  # what ``/v1/ping/`` names as the organization; the project is the tenant
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass
class Services:
    config: Config
    dispatcher: Dispatcher
    background: BackgroundAdds
    webhooks: Any = None  # gateway.webhooks.admin.WebhookAdmin, when webhooks are on
    frame_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def memory(self) -> MemoryBackend:
        return self.dispatcher.memory


@dataclass
class Call:
    grant: Grant
    body: Any
    query: Any
    params: dict[str, str]
    headers: Any
    url: Any  # the request's yarl.URL (paging links)
    services: Services

    @property
    def tenant(self) -> str:
        return self.grant.tenant

    def frame_id(self) -> str:
        """An id for the protocol frame a handler hands to the dispatcher (logs only)."""
        return f"rest-{next(self.services.frame_ids)}"

    def request_id(self, from_body: str | None) -> str:
        """The write's idempotency key: the body's ``request_id``, else the ``Idempotency-Key``
        header, else a fresh one (then a retry is a new write, as with Mem0)."""
        header = self.headers.get(IDEMPOTENCY_HEADER)
        if from_body:
            return from_body
        if header and 0 < len(header) <= 128:
            return header
        return str(uuid.uuid4())


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str  # the operationId, and the metrics label (``rest_<name>``)
    summary: str
    handler: Handler
    reply: Any  # the 200 answer's type; a tuple of types when it may be either (documented as oneOf)
    body: type | None = None
    query: type | None = None
    tag: str = "memories"
    auth: bool = True
    statuses: tuple[int, ...] = (400, 401, 403, 404, 429, 503)
