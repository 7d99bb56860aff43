"""What every path of the engine shares: the config, the adapters (built from the config unless
injected, opened once), the clock, the event hub and the per-owner mailboxes.

The write, read, search, replay and recovery paths each hold this one object rather than
copies of its parts, so an adapter opened late (the LLM, on first use) is seen by all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from runtime.clock import Clock, SystemClock
from runtime.config import Config, load_config
from runtime.embedders import Embedder, make_embedder
from runtime.errors import InvalidRequest
from runtime.events import EventHub
from runtime.graphs import GraphStore, make_graph_store
from runtime.journal import Journal, make_journal
from runtime.llms import LLM, make_llm
from runtime.mailbox import OwnerMailboxes
from runtime.vectors import VectorStore, make_vector_store

T = TypeVar("T")


@dataclass
class Adapters:
    """The ports the engine runs on; one left out is built from the config when the engine opens.
    Those passed in belong to the caller: the engine closes only the ones it built."""

    llm: LLM | None = None
    embedder: Embedder | None = None
    vector_store: VectorStore | None = None
    journal: Journal | None = None
    graph_store: GraphStore | None = None


def _opened(part: T | None, what: str = "AsyncMemory is not open") -> T:
    assert part is not None, what
    return part


class EngineContext:
    """The engine's shared state. ``open_engine`` opens the whole engine (adapters, then recovery):
    every path calls ``ready()`` first, so the first call on a fresh engine opens it."""

    def __init__(self, config: Config | None, adapters: Adapters, *, open_engine: Callable[[], Awaitable[Any]],
                 clock: Clock | None = None, hub: EventHub | None = None):
        self.config = config or load_config()
        self._open_engine = open_engine
        self._llm, self._embedder, self._graph = adapters.llm, adapters.embedder, adapters.graph_store
        self._vectors, self._journal = adapters.vector_store, adapters.journal
        self._injected = {id(part) for part in vars(adapters).values() if part is not None}
        self.clock = clock or SystemClock()
        self.hub = hub or EventHub(self.config.memory.subscriber_queue)
        self.mailboxes = OwnerMailboxes(self.config.memory.mailbox_capacity)
        self._open_lock = anyio.Lock()
        self._llm_lock = anyio.Lock()
        self.opened = False

    # ---- lifecycle -----------------------------------------------------------------------
    async def open_adapters(self) -> bool:
        """Build and open the adapters; True if this call opened them (False: they already were)."""
        async with self._open_lock:
            if self.opened:
                return False
            if self._embedder is None:
                self._embedder = await anyio.to_thread.run_sync(make_embedder, self.config.embedder)
            if self._journal is None:
                self._journal = make_journal(self.config)
            await self._journal.open()
            if self._vectors is None:
                self._vectors = make_vector_store(self.config)
            await self._vectors.open(self._embedder.dims)
            if self.graph_enabled:
                if self._graph is None:
                    self._graph = make_graph_store(self.config)
                await self._graph.open(self._embedder.dims)
            self.opened = True
        return True

    async def close(self) -> None:
        for part in (self._llm, self._embedder, self._vectors, self._graph, self._journal):
            if part is not None and id(part) not in self._injected:
                await part.close()
        self.opened = False

    async def ready(self) -> None:
        if not self.opened:
            await self._open_engine()

    async def llm(self) -> LLM:
        """The LLM, built on first use: reads and replays never need one."""
        if self._llm is None:
            async with self._llm_lock:
                if self._llm is None:
                    self._llm = await make_llm(self.config.llm)
        return self._llm

    # ---- the adapters --------------------------------------------------------------------
    @property
    def journal(self) -> Journal:
        return _opened(self._journal)

    @property
    def vectors(self) -> VectorStore:
        return _opened(self._vectors)

    @property
    def graph_enabled(self) -> bool:
        return self.config.graph.enabled

    @property
    def graph(self) -> GraphStore:
        return _opened(self._graph, "graph memory is off or AsyncMemory is not open")

    @property
    def embedder(self) -> Embedder:
        return _opened(self._embedder)

    # ---- what every call needs -----------------------------------------------------------
    def tenant(self, tenant: str | None) -> str:
        return tenant or self.config.tenant

    async def serialized(self, tenant: str, owner: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` in the owner's mailbox: one write (or catch-up) of an owner at a time."""
        return await self.mailboxes.run(f"{tenant}\x1f{owner}", work)

    def page(self, limit: int, offset: int) -> tuple[int, int]:
        if not isinstance(limit, int) or not 1 <= limit <= self.config.memory.max_page_size:
            raise InvalidRequest(f"limit must be between 1 and {self.config.memory.max_page_size}")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequest("offset must be a non-negative integer")
        return limit, offset
