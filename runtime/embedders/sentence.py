"""sentence-transformers embedder (CPU or CUDA), run in a worker thread.

Thread count is set deliberately: on a busy 2-core box torch's default thread pool made one
MiniLM embedding 10-25x slower than a single thread did. On CUDA the batch size is the knob
that matters (the embedder actor's micro-batches are cut into batches of this size), and
half precision roughly halves memory and time; vectors are normalized in float32 either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from runtime.errors import BackendUnavailable, ConfigError
from runtime.packaged_models import PACKAGED_EMBEDDERS


def resolve_model_path(model: str) -> str:
    if model in PACKAGED_EMBEDDERS:
        return str(PACKAGED_EMBEDDERS[model]())
    if Path(model).is_dir():
        return model
    raise ConfigError(f"embedder.model {model!r} is neither a packaged model ({', '.join(PACKAGED_EMBEDDERS)}) "
                      "nor a local folder (nothing is downloaded at run time)")


class SentenceTransformerEmbedder:
    def __init__(self, model: str = "all-MiniLM-L6-v2", *, device: str = "cpu", threads: int = 1,
                 batch_size: int = 64, precision: str = "float32"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if precision != "float32" and not device.startswith("cuda"):
            raise ConfigError(f"embedder.precision {precision!r} needs a CUDA device (embedder.device is {device!r})")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"embedder.device is {device!r} but torch sees no CUDA GPU in this process")
        if device == "cpu" and threads > 0:
            torch.set_num_threads(threads)
        self._model: Any = SentenceTransformer(resolve_model_path(model), device=device)
        if precision != "float32":
            self._model.to(getattr(torch, precision))
        self.device = device
        self.precision = precision
        self.dims: int = int(self._model.get_embedding_dimension())
        self._batch_size = batch_size
        # one encode at a time: torch already uses the configured threads inside a call
        self._lock = anyio.Lock()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []

        def encode() -> list[list[float]]:
            vectors = self._model.encode(texts, batch_size=self._batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
            return vectors.astype("float32").tolist()

        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(encode)
            except RuntimeError as exc:
                raise BackendUnavailable(f"embedder failed: {exc}", backend="embedder") from exc

    async def close(self) -> None:
        return None
