"""Port adapters that call the model actors: a shard's engine sees an ordinary LLM and
Embedder, and the batching across shards happens behind them."""

from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import RayActorError

from actors.replies import unwrap
from runtime.errors import BackendUnavailable

try:  # absent in some Ray versions
    from ray.exceptions import ActorUnavailableError
except ImportError:  # pragma: no cover
    ActorUnavailableError = RayActorError  # type: ignore[misc,assignment]


async def call_actor(ref: Any, backend: str) -> Any:
    try:
        return unwrap(await ref)
    except (RayActorError, ActorUnavailableError) as exc:
        raise BackendUnavailable(f"the {backend} actor is unavailable: {exc}", backend=backend) from exc


class RemoteEmbedder:
    def __init__(self, handle: Any, dims: int):
        self._handle = handle
        self.dims = dims

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await call_actor(self._handle.embed.remote(texts), "embedder")

    async def close(self) -> None:
        return None


class RemoteLLM:
    def __init__(self, handle: Any):
        self._handle = handle

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        return await call_actor(self._handle.complete_json.remote(messages, schema, name), "llm")

    async def close(self) -> None:
        return None


def actor_pid(handle: Any) -> int:
    return ray.get(handle.pid.remote())
