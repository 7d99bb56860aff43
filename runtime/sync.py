"""``Memory``: the blocking API, a thin wrapper that runs ``AsyncMemory`` on a private event
loop thread (anyio's blocking portal). Every method is the async one, called through the portal,
so there is one implementation of each operation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from anyio.from_thread import start_blocking_portal

from runtime.config import Config
from runtime.engine import AsyncMemory


def _blocking(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Memory, *args: Any, **kwargs: Any) -> Any:
        bound = getattr(self._memory, method.__name__)
        return self._portal.call(functools.partial(bound, *args, **kwargs))

    return call


class Memory:
    """Blocking twin-free facade: ``Memory().add("I live in Paris", user_id="alice")``."""

    def __init__(self, config: Config | None = None, **adapters: Any):
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        try:
            self._memory = AsyncMemory(config, **adapters)
            self._portal.call(self._memory.open)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise

    add = _blocking(AsyncMemory.add)
    get = _blocking(AsyncMemory.get)
    get_all = _blocking(AsyncMemory.get_all)
    search = _blocking(AsyncMemory.search)
    update = _blocking(AsyncMemory.update)
    delete = _blocking(AsyncMemory.delete)
    delete_all = _blocking(AsyncMemory.delete_all)
    history = _blocking(AsyncMemory.history)
    reset = _blocking(AsyncMemory.reset)
    head = _blocking(AsyncMemory.head)

    @property
    def config(self) -> Config:
        return self._memory.config

    def close(self) -> None:
        if self._portal_cm is not None:
            try:
                self._portal.call(self._memory.close)
            finally:
                cm, self._portal_cm = self._portal_cm, None
                cm.__exit__(None, None, None)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
