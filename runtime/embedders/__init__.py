"""Embedders: text → vector, in batches."""

from runtime.embedders.factory import make_embedder
from runtime.embedders.port import Embedder

__all__ = ["Embedder", "make_embedder"]
