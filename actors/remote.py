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

from actors.balance import LeastLoaded
from actors.replies import Reply, unwrap
from runtime import hops
from runtime.batching import MicroBatcher
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


class Replicas:
    """Calls to a set of model actor replicas, each call to the least loaded one (``actors.balance``).

    A call whose replica died is retried on another replica; a suspect replica is probed with a
    cheap ``pid`` call (bounded by ``probe_timeout_s``) before it gets real calls again.
    """

    def __init__(self, handles: Any, *, wait_s: float = 60.0, cooldown_s: float = 10.0,
                 probe_timeout_s: float = 2.0):
        self.handles = list(handles) if isinstance(handles, list | tuple) else [handles]
        self.balancer = LeastLoaded(len(self.handles), cooldown_s=cooldown_s)
        self._wait_s = wait_s
        self._probe_timeout_s = probe_timeout_s

    async def _pick(self) -> int:
        for _ in range(len(self.handles) + 1):
            choice = self.balancer.choose()
            if not choice.probe:
                return choice.index
            ok = False
            try:
                with anyio.move_on_after(self._probe_timeout_s):
                    await self.handles[choice.index].pid.remote()
                    ok = True
            except RESTARTING:
                pass
            finally:
                self.balancer.probed(choice.index, ok)
            if ok:
                return choice.index
        return self.balancer.choose().index

    async def call(self, method: str, *args: Any, backend: str) -> Any:
        return (await self.call_reply(method, *args, backend=backend)).value

    async def call_reply(self, method: str, *args: Any, backend: str) -> Reply:
        """The actor's whole reply (its ``extra`` too); a failure is raised as its typed error."""
        async def once() -> Reply:
            index = await self._pick()
            self.balancer.started(index)
            failed = False
            try:
                reply = await getattr(self.handles[index], method).remote(*args)
                unwrap(reply)
                return reply
            except RESTARTING:
                failed = True
                raise
            finally:
                self.balancer.finished(index, failed=failed)

        return await through_restarts(once, what=f"the {backend} actor", backend=backend, wait_s=self._wait_s)


class RemoteEmbedder:
    """The embedder actors as an ``Embedder``. With ``in_flight`` set, calls from this process are
    coalesced: at most that many are out at once, and texts that arrive meanwhile go together in
    the next one (no timer, so an idle process never waits) - under load one Ray call carries the
    texts of many turns. The caller's trace (``runtime.hops``) gets the Ray call's round trip
    (``embed_call_ms``; coalesced: ``embed_coalesce_wait_ms`` and ``embed_coalesce_call_ms``) and
    the embedder's own hops."""

    def __init__(self, handles: Any, dims: int, wait_s: float = 60.0, cooldown_s: float = 10.0, *,
                 in_flight: int | None = None, max_batch: int = 256):
        self._replicas = Replicas(handles, wait_s=wait_s, cooldown_s=cooldown_s)
        self.dims = dims
        self._coalescer = None if in_flight is None else MicroBatcher(
            self._coalesced_call, max_batch=max_batch, max_wait_s=0.0, max_in_flight=in_flight,
            max_pending=100_000, name="embed_coalesce")

    async def _call(self, texts: list[str]) -> tuple[list[list[float]], dict[str, float]]:
        reply = await self._replicas.call_reply("embed", texts, backend="embedder")
        return reply.value, reply.extra.get("hops", {})

    async def _coalesced_call(self, texts: list[str]) -> list[tuple[list[float], dict[str, float]]]:
        """Each vector with the embedder's hops of the call that carried it (shared by its batch)."""
        vectors, received = await self._call(texts)
        return [(vector, received) for vector in vectors]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if self._coalescer is None:
            started = time.perf_counter()
            vectors, received = await self._call(texts)
            hops.add("embed_call_ms", hops.since(started))
            hops.merge(received)
            return vectors
        self._coalescer.run_in_background()
        pairs = await self._coalescer.submit(texts)
        if pairs:
            hops.merge(pairs[0][1])
        return [vector for vector, _ in pairs]

    async def close(self) -> None:
        return None


class RemoteLLM:
    def __init__(self, handles: Any, wait_s: float = 60.0, cooldown_s: float = 10.0):
        self._replicas = Replicas(handles, wait_s=wait_s, cooldown_s=cooldown_s)

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        return await self._replicas.call("complete_json", messages, schema, name, backend="llm")

    async def close(self) -> None:
        return None
