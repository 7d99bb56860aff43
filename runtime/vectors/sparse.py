"""BM25 term weights for sparse vectors, from Qdrant's own tokenizer.

qdrant-edge-py ships Qdrant's BM25 text model (``qdrant_edge.Bm25``): the engine's tokenizer,
English stopwords and Snowball stemmer, run in-process with no model download (fastembed's
``Qdrant/bm25`` fetches its stopword files from a model hub, which fails offline). A term's index
is a hash of its stemmed token, so no vocabulary has to be kept, shared between processes or
rebuilt: the same text gives the same vector in every shard actor, for both stores, forever.

Only the term-frequency half of BM25 is computed here (saturation ``k``, length normalisation
``b`` against ``avg_len``); the IDF half is the store's: the sparse vector is declared with
Qdrant's IDF modifier, so document frequencies are the live ones, never a stale snapshot.
Queries weigh each distinct term 1, so a query scores sum(IDF x TF-part) over shared terms.
"""

from __future__ import annotations

import msgspec
from qdrant_edge import Bm25, Bm25Config

from runtime.errors import ConfigError

SPARSE_VECTOR = "bm25"  # the name of the sparse vector beside the dense one, in both stores


class SparseTerms(msgspec.Struct, frozen=True):
    """A sparse vector in neutral form: each store builds its own class from it."""

    indices: list[int]
    values: list[float]


class SparseEncoder:
    """Documents and queries → BM25 sparse vectors. The defaults are Qdrant's (k 1.2, b 0.75,
    average length 256 tokens); on LOCOMO's short turns a shorter ``avg_len`` (20) scored lower
    (sparse recall@10 0.622 vs 0.632), so they are kept."""

    def __init__(self, *, k: float = 1.2, b: float = 0.75, avg_len: float = 256.0, language: str = "english"):
        try:
            self._model = Bm25(Bm25Config(k=k, b=b, avg_len=avg_len, language=language))
        except ValueError as exc:
            raise ConfigError(f"bm25: {exc}") from exc

    def documents(self, texts: list[str]) -> list[SparseTerms]:
        return [_terms(self._model.embed_document(text)) for text in texts]

    def query(self, text: str) -> SparseTerms:
        return _terms(self._model.embed_query(text))


def _terms(vector: object) -> SparseTerms:
    return SparseTerms(indices=list(vector.indices), values=list(vector.values))  # type: ignore[attr-defined]
