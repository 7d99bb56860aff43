"""One contract, every vector store: Qdrant Edge, qdrant-client (in-process mode), and a Qdrant
server when MEMSTREAM_QDRANT_URL points at one."""

from __future__ import annotations

import os
import random
import uuid

import pytest

from runtime.errors import BackendUnavailable, InvalidRequest
from runtime.filters import matches, parse_filters
from runtime.model import MemoryRecord, Scope
from runtime.vectors.edge import EdgeVectorStore
from runtime.vectors.qdrant import QdrantVectorStore

DIMS = 16
QDRANT_URL = os.environ.get("MEMSTREAM_QDRANT_URL")


def vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIMS)]


@pytest.fixture(params=["edge", "qdrant-local", "qdrant-local-sharded", "qdrant-server", "qdrant-server-sharded"])
async def store(request, tmp_path):
    # "-sharded": tenant t1 has shards of its own (user-defined sharding), every other tenant shares
    dedicated = ["t1"] if request.param.endswith("-sharded") else None
    if request.param == "edge":
        s = EdgeVectorStore(tmp_path / "edge")
    elif request.param.startswith("qdrant-local"):
        s = QdrantVectorStore(location=":memory:", dedicated_tenants=dedicated)
    else:
        if not QDRANT_URL:
            pytest.skip("set MEMSTREAM_QDRANT_URL to run the contract against a Qdrant server")
        s = QdrantVectorStore(url=QDRANT_URL, collection=f"test_{uuid.uuid4().hex[:10]}", dedicated_tenants=dedicated,
                              shard_number=2)
    await s.open(DIMS)
    yield s
    await s.close()


def rec(text: str, *, user: str = "alice", agent: str | None = None, tenant: str = "t1", **metadata) -> MemoryRecord:
    return MemoryRecord(id=str(uuid.uuid4()), text=text, scope=Scope(user_id=user, agent_id=agent), tenant=tenant,
                        metadata=metadata, created_at="c")


async def test_upsert_get_delete_and_idempotent_reapply(store):
    a = rec("alpha", color="red")
    await store.upsert([a], [vec(1)])
    await store.upsert([a], [vec(1)])  # re-applying the same journal entry changes nothing
    assert await store.get("t1", [a.id]) == [a]
    assert await store.get("t2", [a.id]) == []  # another tenant cannot read it
    assert await store.get("t1", ["not-a-uuid"]) == []
    assert await store.count(tenant="t1", scope=None, filters=None) == 1
    await store.delete([a.id, str(uuid.uuid4())])
    assert await store.get("t1", [a.id]) == []


async def test_search_is_restricted_to_tenant_and_scope(store):
    mine = rec("mine")
    others = [rec("bob's", user="bob"), rec("other tenant", tenant="t2"), rec("agent", agent="helper")]
    await store.upsert([mine, *others], [vec(1), vec(1), vec(1), vec(2)])
    hits = await store.search(vec(1), tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=10)
    assert {h.record.text for h in hits} == {"mine", "agent"}
    assert hits[0].record.text == "mine" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    hits = await store.search(vec(1), tenant="t1", scope=Scope(user_id="alice", agent_id="helper"), filters=None,
                              limit=10)
    assert [h.record.text for h in hits] == ["agent"]
    hits = await store.search(vec(1), tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=10,
                              threshold=0.99)
    assert [h.record.text for h in hits] == ["mine"]



async def test_batch_search_answers_each_vector_in_order_within_scope(store):
    near_one, near_two, bobs = rec("one"), rec("two"), rec("bob's", user="bob")
    await store.upsert([near_one, near_two, bobs], [vec(1), vec(2), vec(1)])
    batches = await store.search_batch([vec(2), vec(1), vec(3)], tenant="t1", scope=Scope(user_id="alice"),
                                       filters=None, limit=1)
    assert [[h.record.text for h in hits] for hits in batches][:2] == [["two"], ["one"]]
    assert len(batches) == 3 and all(h.record.scope.user_id == "alice" for hits in batches for h in hits)
    assert await store.search_batch([], tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=1) == []

FILTERS = [
    {"color": "red"}, {"color": {"ne": "red"}}, {"n": {"in": [1, 3]}}, {"n": {"nin": [1, 3]}},
    {"n": {"gt": 2}}, {"n": {"gte": 2, "lt": 4}}, {"score": {"lte": 0.5}}, {"color": {"contains": "ee"}},
    {"OR": [{"color": "red"}, {"n": 4}]}, {"NOT": [{"color": "red"}]}, {"flag": True}, {"tags": "b"},
    {"AND": [{"color": {"in": ["red", "green"]}}, {"NOT": [{"n": 1}]}]}, {"missing": "*"}, {"color": "*"},
    {"score": 0.25},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[str(f) for f in FILTERS])
async def test_filters_match_the_reference_semantics(store, filters):
    records = [
        rec("r1", color="red", n=1, score=0.25, flag=True, tags=["a", "b"]),
        rec("r2", color="green", n=2, score=0.5, flag=False, tags=["c"]),
        rec("r3", color="red", n=3, score=0.75),
        rec("r4", n=4, score=1.0, tags=["b"]),
        rec("r5", color="steel", n=5),
    ]
    await store.upsert(records, [vec(i) for i in range(len(records))])
    expr = parse_filters(filters)
    expected = {r.text for r in records if matches(expr, r.metadata)}
    listed = await store.list(tenant="t1", scope=Scope(user_id="alice"), filters=expr, limit=100)
    assert {r.text for r in listed} == expected
    hits = await store.search(vec(0), tenant="t1", scope=Scope(user_id="alice"), filters=expr, limit=100)
    assert {h.record.text for h in hits} == expected
    assert await store.count(tenant="t1", scope=Scope(user_id="alice"), filters=expr) == len(expected)


async def test_list_pages_without_overlap(store):
    records = [rec(f"m{i}") for i in range(25)]
    await store.upsert(records, [vec(i) for i in range(25)])
    pages = [await store.list(tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=10, offset=o)
             for o in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert len({r.id for p in pages for r in p}) == 25


async def test_a_second_edge_opener_is_refused_with_a_clear_error(tmp_path):
    first = EdgeVectorStore(tmp_path / "shard")
    await first.open(DIMS)
    second = EdgeVectorStore(tmp_path / "shard")
    with pytest.raises(BackendUnavailable, match="another process"):
        await second.open(DIMS)
    await first.close()
    await second.open(DIMS)  # the lock goes with the first opener's close
    await second.close()


async def test_an_edge_shard_keeps_the_wal_setting_it_was_created_with(tmp_path):
    """New shards run without Edge's WAL (the journal is the log, watermarks follow flushes); a shard
    created with it (the earlier default) keeps it, since Edge cannot change it, and its writes
    count as durable at once."""
    old = EdgeVectorStore(tmp_path / "old", wal=True)
    await old.open(DIMS)
    await old.close()
    reopened, new = EdgeVectorStore(tmp_path / "old"), EdgeVectorStore(tmp_path / "new", flush_every=7)
    for store in (reopened, new):
        await store.open(DIMS)
        await store.upsert([rec("kept through a reopen")], [vec(1)])
        await store.flush()
    assert reopened.flush_every is None and new.flush_every == 7
    for store in (reopened, new):
        await store.close()


async def test_unreachable_qdrant_server_is_a_typed_error():
    store = QdrantVectorStore(url="http://127.0.0.1:1", timeout_s=1)
    with pytest.raises(BackendUnavailable):
        await store.open(DIMS)
    await store.close()


async def test_an_agent_or_run_scope_never_reaches_a_users_memories(store):
    """Regression: reads are restricted to the scope's owner, so a token for agent:helper
    cannot list a user's memories that merely carry agent_id=helper (they belong to user:alice)."""
    users = rec("alice's, via helper", agent="helper")
    agents = MemoryRecord(id=str(uuid.uuid4()), text="helper's own", scope=Scope(agent_id="helper"), tenant="t1",
                          metadata={}, created_at="c")
    await store.upsert([users, agents], [vec(1), vec(1)])
    listed = await store.list(tenant="t1", scope=Scope(agent_id="helper"), filters=None, limit=10)
    assert [r.text for r in listed] == ["helper's own"]
    hits = await store.search(vec(1), tenant="t1", scope=Scope(agent_id="helper"), filters=None, limit=10)
    assert [h.record.text for h in hits] == ["helper's own"]
    assert await store.count(tenant="t1", scope=Scope(agent_id="helper"), filters=None) == 1
    listed = await store.list(tenant="t1", scope=Scope(user_id="alice", agent_id="helper"), filters=None, limit=10)
    assert [r.text for r in listed] == ["alice's, via helper"]


def test_dedicated_tenants_get_their_own_shard_key():
    from runtime.vectors.qdrant import SHARED_SHARD_KEY, shard_key_for

    assert shard_key_for("t1", frozenset()) is None  # not custom-sharded
    assert shard_key_for("big", frozenset({"big"})) == "tenant:big"
    assert shard_key_for("small", frozenset({"big"})) == SHARED_SHARD_KEY


# ---- sparse (BM25) and hybrid search ---------------------------------------------------------
async def test_sparse_search_ranks_by_keywords_within_scope(store):
    assert store.has_sparse  # a store created now has sparse vectors beside the dense ones
    sailing, chess = rec("Alice went sailing on the lake"), rec("Alice plays chess on Sundays")
    bobs = rec("Bob went sailing too", user="bob")
    await store.upsert([sailing, chess, bobs], [vec(1), vec(2), vec(3)])
    hits = await store.search(None, text="when did she go sailing?", tenant="t1", scope=Scope(user_id="alice"),
                              filters=None, limit=10, mode="sparse")
    assert [h.record.text for h in hits] == [sailing.text]  # stemmed: "sailing" matches, stopwords do not
    assert hits[0].score > 0


async def test_hybrid_fuses_the_dense_and_the_sparse_ranking(store):
    by_meaning = rec("a memory whose embedding is the query's")
    by_keyword = rec("the tennis racket is in the garage")
    unrelated = rec("nothing in common")
    await store.upsert([by_meaning, by_keyword, unrelated], [vec(1), vec(2), vec(3)])
    common = dict(tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=3)
    dense = await store.search(vec(1), text="tennis racket", mode="dense", **common)
    sparse = await store.search(vec(1), text="tennis racket", mode="sparse", **common)
    hybrid = await store.search(vec(1), text="tennis racket", mode="hybrid", **common)
    assert dense[0].record.id == by_meaning.id
    assert [h.record.id for h in sparse] == [by_keyword.id]
    assert {h.record.id for h in hybrid[:2]} == {by_meaning.id, by_keyword.id}
    assert hybrid[2].record.id == unrelated.id  # the dense leg still brings the rest, ranked below


async def test_hybrid_threshold_gates_the_dense_leg_only(store):
    exact, keyword, far = rec("an exact match"), rec("the violin lesson"), rec("far away")
    await store.upsert([exact, keyword, far], [vec(1), vec(2), vec(3)])
    hits = await store.search(vec(1), text="violin", tenant="t1", scope=Scope(user_id="alice"), filters=None,
                              limit=10, threshold=0.99, mode="hybrid")
    assert {h.record.id for h in hits} == {exact.id, keyword.id}


async def test_hybrid_batch_answers_each_query_in_order(store):
    one, two = rec("apples from the market"), rec("a trip to Lisbon")
    await store.upsert([one, two], [vec(1), vec(2)])
    batches = await store.search_batch([vec(2), vec(1)], texts=["Lisbon", "apples"], tenant="t1",
                                       scope=Scope(user_id="alice"), filters=None, limit=1, mode="hybrid")
    assert [[h.record.id for h in hits] for hits in batches] == [[two.id], [one.id]]


async def test_reapplying_and_updating_keeps_the_sparse_vector_in_step(store):
    memory = rec("likes green tea")
    await store.upsert([memory], [vec(1)])
    await store.upsert([memory], [vec(1)])  # recovery re-applies the same entry
    changed = MemoryRecord(id=memory.id, text="likes black coffee", scope=memory.scope, tenant="t1", metadata={},
                           created_at="c", version=2)
    await store.upsert([changed], [vec(1)])
    common = dict(tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=5, mode="sparse")
    assert await store.search(None, text="tea", **common) == []
    assert [h.record.text for h in await store.search(None, text="coffee", **common)] == ["likes black coffee"]
    await store.delete([memory.id])
    assert await store.search(None, text="coffee", **common) == []


@pytest.mark.parametrize("filters", FILTERS[:6] + FILTERS[8:11], ids=[str(f) for f in FILTERS[:6] + FILTERS[8:11]])
@pytest.mark.parametrize("mode", ["sparse", "hybrid"])
async def test_sparse_and_hybrid_searches_apply_the_filters(store, filters, mode):
    records = [
        rec("note r1", color="red", n=1, score=0.25, flag=True), rec("note r2", color="green", n=2, score=0.5),
        rec("note r3", color="red", n=3, score=0.75), rec("note r4", n=4, score=1.0), rec("note r5", color="steel", n=5),
    ]
    await store.upsert(records, [vec(i) for i in range(len(records))])
    expr = parse_filters(filters)
    hits = await store.search(vec(0), text="note", tenant="t1", scope=Scope(user_id="alice"), filters=expr,
                              limit=100, mode=mode)
    assert {h.record.text for h in hits} == {r.text for r in records if matches(expr, r.metadata)}


async def test_a_search_mode_needs_its_inputs(store):
    common = dict(tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=5)
    with pytest.raises(InvalidRequest, match="mode must be one of"):
        await store.search(vec(1), text="x", mode="keyword", **common)
    with pytest.raises(InvalidRequest, match="query text"):
        await store.search(vec(1), mode="hybrid", **common)
    with pytest.raises(InvalidRequest, match="query embedding"):
        await store.search(None, text="x", mode="dense", **common)
    with pytest.raises(InvalidRequest, match="one query text per query embedding"):
        await store.search_batch([vec(1), vec(2)], texts=["x"], mode="hybrid", **common)


@pytest.fixture(params=["edge", "qdrant-local", "qdrant-server"])
async def dense_only_store(request, tmp_path):
    """A store as created before sparse vectors existed: the dense vector alone."""
    if request.param == "edge":
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams

        path = tmp_path / "edge"
        path.mkdir()
        EdgeShard.create(str(path), EdgeConfig(vectors=EdgeVectorParams(size=DIMS, distance=Distance.Cosine))).close()
        s = EdgeVectorStore(path)
    else:
        if request.param == "qdrant-server" and not QDRANT_URL:
            pytest.skip("set MEMSTREAM_QDRANT_URL to run the contract against a Qdrant server")
        s = QdrantVectorStore(url=QDRANT_URL if request.param == "qdrant-server" else None,
                              location=None if request.param == "qdrant-server" else ":memory:",
                              collection=f"test_{uuid.uuid4().hex[:10]}")
        from qdrant_client import models

        await s._client.create_collection(s.collection, vectors_config=models.VectorParams(
            size=DIMS, distance=models.Distance.COSINE))
    await s.open(DIMS)
    yield s
    await s.close()


async def test_a_store_from_before_sparse_vectors_gets_them_added(dense_only_store):
    store = dense_only_store
    old, later = rec("sourdough bread recipe"), rec("sourdough starter feeding")
    await store.upsert([old], [vec(1)])
    assert not store.has_sparse
    common = dict(tenant="t1", scope=Scope(user_id="alice"), filters=None, limit=5)
    with pytest.raises(InvalidRequest, match="backfill-sparse"):
        await store.search(vec(1), text="sourdough", mode="hybrid", **common)
    assert [h.record.id for h in await store.search(vec(1), **common)] == [old.id]  # dense still answers

    assert await store.add_sparse_slot() is True
    assert await store.add_sparse_slot() is False  # once
    assert store.has_sparse and await store.get("t1", [old.id]) == [old]  # the points survived the change
    await store.upsert([later], [vec(2)])  # new writes carry sparse vectors at once
    hits = await store.search(None, text="sourdough", mode="sparse", **common)
    assert [h.record.id for h in hits] == [later.id]
    assert await store.write_sparse([old, rec("never stored")]) == 1  # the backfill fills in the old ones
    hits = await store.search(None, text="sourdough", mode="sparse", **common)
    assert {h.record.id for h in hits} == {old.id, later.id}
    hits = await store.search(vec(1), **common)
    assert hits[0].record.id == old.id and hits[0].score == pytest.approx(1.0, abs=1e-4)  # dense untouched


async def test_an_interrupted_edge_upgrade_is_finished_on_open(tmp_path):
    from runtime.vectors.edge import BEFORE_SPARSE, WITH_SPARSE

    store = EdgeVectorStore(tmp_path / "shard")
    await store.open(DIMS)
    memory = rec("kept across the swap")
    await store.upsert([memory], [vec(1)])
    await store.close()
    (tmp_path / "shard").rename(tmp_path / f"shard{WITH_SPARSE}")  # built, then stopped mid-swap
    (tmp_path / f"shard{BEFORE_SPARSE}").mkdir()
    reopened = EdgeVectorStore(tmp_path / "shard")
    await reopened.open(DIMS)
    assert reopened.has_sparse and await reopened.get("t1", [memory.id]) == [memory]
    assert not (tmp_path / f"shard{BEFORE_SPARSE}").exists()
    await reopened.close()
