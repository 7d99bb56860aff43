"""Blocking facades: run an async object on a private event-loop thread (anyio's blocking
portal) and call its methods through the portal, so every operation has one implementation.

``Memory`` wraps ``AsyncMemory``; ``gateway.client.SyncMemoryClient`` wraps ``MemoryClient``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from anyio.from_thread import start_blocking_portal

from runtime.config import Config
from runtime.engine import AsyncMemory


def blocking(method: Callable[..., Any]) -> Callable[..., Any]:
    """The blocking version of an async method of the wrapped object."""

    @functools.wraps(method)
    def call(self: BlockingFacade, *args: Any, **kwargs: Any) -> Any:
        bound = getattr(self._async, method.__name__)
        return self._portal.call(functools.partial(bound, *args, **kwargs))

    return call


def blocking_iterator(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., Iterator[Any]]:
    """The blocking version of an async generator method: each item is fetched through the portal."""

    @functools.wraps(method)
    def iterate(self: BlockingFacade, *args: Any, **kwargs: Any) -> Iterator[Any]:
        stream = getattr(self._async, method.__name__)(*args, **kwargs)
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(stream.aclose)

    return iterate


class BlockingFacade:
    """Owns the portal thread and the wrapped object's lifetime. The object is entered as an async
    context manager in a task of its own (the portal's), so task groups it opens are entered and
    exited by the same task."""

    def __init__(self, make: Callable[[], Any]):
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        try:
            self._async = self._portal.call(_make, make)
            self._context = self._portal.wrap_async_context_manager(self._async)
            self._context.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise

    def close(self) -> None:
        if self._portal_cm is not None:
            try:
                self._context.__exit__(None, None, None)
            finally:
                cm, self._portal_cm = self._portal_cm, None
                cm.__exit__(None, None, None)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _make(make: Callable[[], Any]) -> Any:
    return make()  # built on the portal's loop: some objects bind to the running loop when made


class Memory(BlockingFacade):
    """Blocking twin-free facade: ``Memory().add("I live in Paris", user_id="alice")``."""

    def __init__(self, config: Config | None = None, **adapters: Any):
        super().__init__(lambda: AsyncMemory(config, **adapters))

    add = blocking(AsyncMemory.add)
    get = blocking(AsyncMemory.get)
    get_all = blocking(AsyncMemory.get_all)
    search = blocking(AsyncMemory.search)
    update = blocking(AsyncMemory.update)
    delete = blocking(AsyncMemory.delete)
    delete_all = blocking(AsyncMemory.delete_all)
    history = blocking(AsyncMemory.history)
    reset = blocking(AsyncMemory.reset)
    head = blocking(AsyncMemory.head)
    subscribe = blocking_iterator(AsyncMemory.subscribe)

    @property
    def config(self) -> Config:
        return self._async.config
