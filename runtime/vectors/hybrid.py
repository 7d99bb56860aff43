"""What a search asks of a vector store: which legs (dense, sparse) and how they are fused.

Pure decisions shared by both Qdrant adapters, which turn them into their own query classes:
``dense`` ranks by cosine similarity of the embedding, ``sparse`` by BM25 over the memory's
text, ``hybrid`` prefetches both within the same tenant/scope/filter and fuses the two rankings
in the store's query API (Reciprocal Rank Fusion by default, or Distribution-Based Score Fusion).

A ``threshold`` is a bound on cosine similarity: in ``hybrid`` it gates the dense leg before
fusion (a memory below it can still enter through its keywords), in ``sparse`` it is a minimum
BM25 score. Fused scores are not similarities: they order the results of one search only.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from runtime.errors import InvalidRequest

SearchMode = Literal["dense", "sparse", "hybrid"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
NO_SPARSE = ("this vector store holds no sparse vectors yet (it was created before hybrid search): "
             "run `memstream backfill-sparse` to add them from the journal")


class FusionSettings(msgspec.Struct, frozen=True):
    """How ``hybrid`` fuses its legs. RRF with Qdrant's default ``k`` of 2: on LOCOMO (1,536
    questions) k 1-4 were within 0.5 points of recall@10 of each other and k 60 (the paper's) lost
    9 points, since it flattens the top of each ranking that the short memories depend on."""

    method: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = 2
    # each leg prefetches max(limit x prefetch_factor, min_prefetch) candidates
    prefetch_factor: int = 2
    min_prefetch: int = 20

    def prefetch(self, limit: int) -> int:
        return max(limit * self.prefetch_factor, self.min_prefetch)


def check_mode(mode: object) -> SearchMode:
    if mode not in SEARCH_MODES:
        raise InvalidRequest(f"mode must be one of {', '.join(SEARCH_MODES)}; got {mode!r}")
    return mode  # type: ignore[return-value]


def query_count(mode: SearchMode, vectors: list[list[float]] | None, texts: list[str] | None) -> int:
    """How many queries a batch holds, after checking that each leg the mode needs was given
    (the embedding for dense, the text for sparse) and that both lists line up."""
    needs_vectors, needs_texts = mode != "sparse", mode != "dense"
    if needs_vectors and vectors is None:
        raise InvalidRequest(f"a {mode} search needs the query embedding")
    if needs_texts and texts is None:
        raise InvalidRequest(f"a {mode} search needs the query text")
    if needs_vectors and needs_texts and len(vectors or ()) != len(texts or ()):
        raise InvalidRequest("one query text per query embedding")
    return len(vectors if needs_vectors else texts or ())  # type: ignore[arg-type]
