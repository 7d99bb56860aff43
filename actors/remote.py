"""Calling actors that may be restarting, and the port adapters that call the model actors.

A shard's engine sees an ordinary LLM and Embedder; the batching across shards happens behind
them. An actor whose process died is restarted by Ray (``max_restarts=-1``); callers wait for
it with backoff, up to a bound, then get a typed error. Model calls are safe to repeat, and
shard writes carry request ids, so "may or may not have run" is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from ray.exceptions import RayActorError

from actors.replies import unwrap
from runtime.errors import BackendUnavailable

try:  # absent in some Ray versions
    from ray.exceptions import ActorUnavailableError
except ImportError:  # pragma: no cover
    ActorUnavailableError = RayActorError  # type: ignore[misc,assignment]

T = TypeVar("T")
RESTARTING = (RayActorError, ActorUnavailableError)


async def through_restarts(call: Callable[[], Awaitable[T]], *, what: str, backend: str, wait_s: float,
                           on_retry: Callable[[], None] | None = None) -> T:
    deadline = time.monotonic() + wait_s
    delay = 0.1
    while True:
        try:
            return await call()
        except RESTARTING as exc:
            if time.monotonic() + delay > deadline:
                raise BackendUnavailable(f"{what} is unavailable and did not come back within {wait_s}s: {exc}",
                                         backend=backend) from exc
            if on_retry is not None:
                on_retry()
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def call_actor(make_call: Callable[[], Any], backend: str, wait_s: float = 60.0) -> Any:
    async def once() -> Any:
        return unwrap(await make_call())

    return await through_restarts(once, what=f"the {backend} actor", backend=backend, wait_s=wait_s)


class RemoteEmbedder:
    def __init__(self, handle: Any, dims: int, wait_s: float = 60.0):
        self._handle = handle
        self.dims = dims
        self._wait_s = wait_s

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await call_actor(lambda: self._handle.embed.remote(texts), "embedder", self._wait_s)

    async def close(self) -> None:
        return None


class RemoteLLM:
    def __init__(self, handle: Any, wait_s: float = 60.0):
        self._handle = handle
        self._wait_s = wait_s

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        return await call_actor(lambda: self._handle.complete_json.remote(messages, schema, name), "llm",
                                self._wait_s)

    async def close(self) -> None:
        return None
