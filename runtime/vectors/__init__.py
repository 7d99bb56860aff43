"""Vector stores: where memories are searched by meaning (a projection of the journal)."""

from runtime.vectors.factory import make_vector_store
from runtime.vectors.port import Hit, VectorStore

__all__ = ["Hit", "VectorStore", "make_vector_store"]
