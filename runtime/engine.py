"""``AsyncMemory``: the whole memory API on one event loop, over injected ports.

A facade: each call is answered by the collaborator for its path, all sharing one
``EngineContext`` (config, adapters, clock, event hub, owner mailboxes):

- ``runtime/write.py``: ``add`` (extract → embed → decide → commit) and the commit itself;
- ``runtime/changes.py``: ``update``, ``delete``, ``delete_all``, ``reset``;
- ``runtime/read.py``: ``get``, ``get_all`` (also ``as_of``), ``history``;
- ``runtime/search.py``: ``search``;
- ``runtime/replay.py``: ``head``, ``subscribe``, ``read_events``, ``subscribe_tenant``;
- ``runtime/recovery.py``: the projections (vector store, graph store) and their repair on open.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from runtime.changes import Changes
from runtime.clock import Clock
from runtime.config import Config
from runtime.context import Adapters, EngineContext
from runtime.embedders import Embedder
from runtime.events import EventHub
from runtime.graphs import GraphStore
from runtime.journal import Journal
from runtime.llms import LLM
from runtime.read import Reader
from runtime.recovery import Projections
from runtime.replay import Replay
from runtime.search import Searcher
from runtime.vectors import VectorStore
from runtime.write import AddOutcome, Writer


def _answered_by(part: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of the collaborator held in attribute ``part``, as a method of the facade with the
    same name, signature and docstring. It returns what the collaborator's method returns: a
    coroutine to await, or (``subscribe``) the async iterator itself, so closing it closes the stream."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: AsyncMemory, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, part), name)(*args, **kwargs)

    return call


class AsyncMemory:
    """The memory API. Adapters are built from ``config`` unless injected (tests, actors)."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        llm: LLM | None = None,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        journal: Journal | None = None,
        clock: Clock | None = None,
        hub: EventHub | None = None,
        graph_store: GraphStore | None = None,
    ):
        self._ctx = EngineContext(config, Adapters(llm, embedder, vector_store, journal, graph_store),
                                  open_engine=self.open, clock=clock, hub=hub)
        self._projections = Projections(self._ctx)
        self._writer = Writer(self._ctx, self._projections)
        self._changes = Changes(self._ctx, self._writer)
        self._reader = Reader(self._ctx)
        self._searcher = Searcher(self._ctx)
        self._replay = Replay(self._ctx)
        self.config = self._ctx.config
        self.hub = self._ctx.hub
        self.add_times = self._writer.add_times  # per-stage latency of recent adds (stats, benchmarks)

    # ---- lifecycle -----------------------------------------------------------------------
    async def open(self) -> AsyncMemory:
        """Open the adapters, then re-apply what the projections missed (once)."""
        if await self._ctx.open_adapters():
            await self._projections.recover()
        return self

    async def close(self) -> None:
        if self._ctx.opened:
            await self.flush()  # before the store closes: its watermarks follow flushes
        await self._ctx.close()

    async def flush(self) -> None:
        """Make every applied change durable in the vector store and record it, so the next start
        re-applies nothing (a store without a WAL otherwise waits for ``flush_every`` entries)."""
        await self._projections.flush_vectors()

    async def __aenter__(self) -> AsyncMemory:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def recover(self) -> int:
        """Re-apply every journal entry a projection (vector store, graph store) missed."""
        return await self._projections.recover()

    async def _get_llm(self) -> LLM:
        return await self._ctx.llm()

    # ---- the adapters and state, for actors, benchmarks and tests ------------------------
    @property
    def journal(self) -> Journal:
        return self._ctx.journal

    @property
    def vectors(self) -> VectorStore:
        return self._ctx.vectors

    @property
    def graph(self) -> GraphStore:
        return self._ctx.graph

    @property
    def embedder(self) -> Embedder:
        return self._ctx.embedder

    @property
    def graph_enabled(self) -> bool:
        return self._ctx.graph_enabled

    @property
    def active_owners(self) -> int:
        """Owners with a request queued or running (their mailbox lanes)."""
        return self._ctx.mailboxes.active

    # ---- write path ----------------------------------------------------------------------
    add = _answered_by("_writer", Writer.add)
    add_detailed = _answered_by("_writer", Writer.add_detailed)
    extract_facts = _answered_by("_writer", Writer.extract_facts)
    update = _answered_by("_changes", Changes.update)
    delete = _answered_by("_changes", Changes.delete)
    delete_all = _answered_by("_changes", Changes.delete_all)
    reset = _answered_by("_changes", Changes.reset)

    # ---- read path -----------------------------------------------------------------------
    get = _answered_by("_reader", Reader.get)
    get_all = _answered_by("_reader", Reader.get_all)
    history = _answered_by("_reader", Reader.history)
    count = _answered_by("_reader", Reader.count)
    search = _answered_by("_searcher", Searcher.search)

    # ---- events --------------------------------------------------------------------------
    head = _answered_by("_replay", Replay.head)
    owners = _answered_by("_replay", Replay.owners)
    subscribe = _answered_by("_replay", Replay.subscribe)
    read_events = _answered_by("_replay", Replay.read_events)
    subscribe_tenant = _answered_by("_replay", Replay.subscribe_tenant)


__all__ = ["AsyncMemory", "AddOutcome"]
