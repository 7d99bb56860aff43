"""An embedder whose concurrent callers share model calls.

Wherever one model serves many callers at once - the embedder actor serving every shard, or a
shard that runs the model itself (``ray.embed_in: shard``) - their texts go through one
``MicroBatcher``: a lone query is sent at once, and what arrives while a call is out goes
together in the next one. Each caller's trace (``runtime.hops``) gets ``embedder_wait_ms`` and
``embedder_call_ms``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.batching import MicroBatcher
from runtime.embedders.port import Embedder


class BatchedEmbedder:
    def __init__(self, inner: Embedder, *, max_batch: int, max_wait_s: float):
        self.inner = inner
        self.dims = inner.dims
        self._batcher = MicroBatcher(inner.embed, max_batch=max_batch, max_wait_s=max_wait_s, name="embedder")

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self._batcher.run_in_background()
        return await self._batcher.submit(texts)

    def stats(self) -> dict[str, Any]:
        stats = msgspec.to_builtins(self._batcher.stats)
        stats["mean_batch"] = round(self._batcher.stats.mean_batch, 2)
        return stats

    async def close(self) -> None:
        await self.inner.close()
