"""One contract, every graph store: LadybugDB (embedded, always) and Memgraph (when
MEMSTREAM_MEMGRAPH_URL points at one)."""

from __future__ import annotations

import os
import random
import sys
import uuid

import anyio
import msgspec
import pytest

from runtime.errors import BackendUnavailable
from runtime.graphs.ladybug import LadybugGraphStore
from runtime.graphs.memgraph import MemgraphGraphStore
from runtime.graphs.port import EntityNode, RelationEdge
from runtime.model import Scope
from runtime.relations import name_key

DIMS = 8
MEMGRAPH_URL = os.environ.get("MEMSTREAM_MEMGRAPH_URL")
ALICE = Scope(user_id="alice")
BOB = Scope(user_id="bob")


def vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIMS)]


@pytest.fixture(params=["ladybug", "memgraph"])
async def store(request, tmp_path):
    if request.param == "ladybug":
        s = LadybugGraphStore(tmp_path / "graph")
        await s.open(DIMS)
        yield s, "t1"
        await s.close()
        return
    if not MEMGRAPH_URL:
        pytest.skip("Memgraph contract skipped: set MEMSTREAM_MEMGRAPH_URL (e.g. bolt://127.0.0.1:7687 after "
                    "`docker run -p 7687:7687 memgraph/memgraph`) to run it")
    s = MemgraphGraphStore(MEMGRAPH_URL)
    await s.open(DIMS)
    tenant = f"test-{uuid.uuid4().hex[:10]}"  # the server is shared: each test writes a tenant of its own
    yield s, tenant
    await s.drop(tenant)
    await s.close()


def node(name: str, tenant: str, scope: Scope = ALICE) -> EntityNode:
    return EntityNode(id=str(uuid.uuid4()), tenant=tenant, owner=scope.owner, name=name, key=name_key(name),
                      created_at="2026-01-01")


def rel(source: EntityNode, relationship: str, destination: EntityNode, *, scope: Scope = ALICE,
        invalid_at: str | None = None, created_at: str = "2026-01-01") -> RelationEdge:
    return RelationEdge(id=str(uuid.uuid4()), tenant=source.tenant, scope=scope, source_id=source.id,
                        source=source.name, relationship=relationship, destination_id=destination.id,
                        destination=destination.name, valid_at=created_at, invalid_at=invalid_at,
                        created_at=created_at)


async def write(store, entities, relations, deleted=(), seeds=None):
    first = relations[0] if relations else None
    tenant = entities[0].tenant if entities else first.tenant
    owner = entities[0].owner if entities else first.owner
    await store.apply(tenant, owner, entities=entities, entity_vectors=[vec(hash(e.name) % 1000) for e in entities],
                      relations=relations, relation_vectors=[vec(i) for i, _ in enumerate(relations)],
                      deleted=list(deleted))


async def test_apply_is_idempotent_and_reads_are_owner_restricted(store):
    s, t = store
    alice, paris = node("alice", t), node("Paris", t)
    lives = rel(alice, "lives_in", paris)
    await write(s, [alice, paris], [lives])
    await write(s, [alice, paris], [lives])  # re-applying the same journal entries changes nothing
    assert await s.count(t, ALICE.owner) == (2, 1)
    bob, paris_b = node("bob", t, BOB), node("Paris", t, BOB)
    await write(s, [bob, paris_b], [rel(bob, "lives_in", paris_b, scope=BOB)])
    [got] = await s.relations(t, ALICE.owner)
    assert (got.source, got.relationship, got.destination, got.scope) == ("alice", "lives_in", "Paris", ALICE)
    assert got.id == lives.id and got.source_id == alice.id and got.invalid_at is None
    assert {e.id for e in await s.entities_by_key(t, ALICE.owner, ["paris", "nobody"])} == {paris.id}
    assert await s.relations("other-tenant", ALICE.owner) == []


async def test_similar_entities_rank_only_the_owners_nodes(store):
    s, t = store
    alice, acme = node("alice", t), node("Acme", t)
    await write(s, [alice, acme], [rel(alice, "works_at", acme)])
    bob, twin = node("bob", t, BOB), node("Acme twin", t, BOB)
    await s.apply(t, BOB.owner, entities=[bob, twin], entity_vectors=[vec(5), vec(hash("Acme") % 1000)],
                  relations=[rel(bob, "works_at", twin, scope=BOB)], relation_vectors=[vec(9)], deleted=[])
    hits = await s.similar_entities(t, ALICE.owner, vec(hash("Acme") % 1000), 5)
    assert hits[0].entity.id == acme.id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert {h.entity.owner for h in hits} == {ALICE.owner}  # bob's identical vector is never a candidate


async def test_invalidation_is_kept_and_deletion_prunes_orphans(store):
    s, t = store
    alice, berlin, paris = node("alice", t), node("Berlin", t), node("Paris", t)
    old = rel(alice, "lives_in", berlin)
    await write(s, [alice, berlin], [old])
    new = rel(alice, "lives_in", paris, created_at="2026-01-02")
    await write(s, [alice, berlin, paris], [msgspec.structs.replace(old, invalid_at="2026-01-02", version=2), new])
    assert [r.id for r in await s.relations(t, ALICE.owner)] == [new.id]
    every = await s.relations(t, ALICE.owner, include_invalid=True)
    assert [(r.id, r.invalid_at, r.version) for r in every] == [(old.id, "2026-01-02", 2), (new.id, None, 1)]
    assert [r.id for r in await s.relations(t, ALICE.owner, source_ids=[alice.id])] == [new.id]
    assert await s.relations(t, ALICE.owner, source_ids=[paris.id]) == []
    assert await s.relations(t, ALICE.owner, source_ids=[alice.id], relationships=["likes"]) == []
    assert [r.id for r in await s.relations(t, ALICE.owner, relationships=["lives_in"], include_invalid=True)] == [
        old.id, new.id]
    await s.apply(t, ALICE.owner, entities=[], entity_vectors=[], relations=[], relation_vectors=[],
                  deleted=[old.id, new.id])
    assert await s.count(t, ALICE.owner) == (0, 0)


async def test_search_relations_ranks_valid_edges_in_scope(store):
    s, t = store
    alice, a, b, c = node("alice", t), node("A", t), node("B", t), node("C", t)
    helper = Scope(user_id="alice", agent_id="helper")
    r0, r1 = rel(alice, "likes", a), rel(alice, "likes", b, scope=helper)
    r2 = rel(alice, "likes", c, invalid_at="2026-01-03")
    await write(s, [alice, a, b, c], [r0, r1, r2])  # relation vectors vec(0), vec(1), vec(2)
    hits = await s.search_relations(t, ALICE.owner, vec(1), scope=ALICE, limit=5)
    assert [h.relation.id for h in hits][:1] == [r1.id] and r2.id not in {h.relation.id for h in hits}
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    scoped = await s.search_relations(t, ALICE.owner, vec(0), scope=helper, limit=5)
    assert [h.relation.id for h in scoped] == [r1.id]
    assert len(await s.relations(t, ALICE.owner, limit=1, offset=1)) == 1


async def test_hostile_text_is_data_not_cypher(store):
    s, t = store
    evil = "x'}) MATCH (n) DETACH DELETE n //"
    alice, target = node("alice", t), node(evil, t)
    edge = rel(alice, "likes`]->() MATCH (n) DETACH DELETE n //", target)
    await write(s, [alice, target], [edge])
    [got] = await s.relations(t, ALICE.owner)
    assert got.destination == evil and got.relationship.startswith("likes`")
    assert await s.count(t, ALICE.owner) == (2, 1)
    assert [e.name for e in await s.entities_by_key(t, ALICE.owner, [name_key(evil)])] == [evil]


async def test_a_second_process_cannot_open_a_ladybug_directory(tmp_path):
    s = LadybugGraphStore(tmp_path / "graph")
    await s.open(DIMS)
    code = ("import anyio, sys\nfrom runtime.graphs.ladybug import LadybugGraphStore\n"
            "from runtime.errors import BackendUnavailable\n"
            "async def main():\n"
            "    try:\n        await LadybugGraphStore(sys.argv[1]).open(8)\n"
            "    except BackendUnavailable as exc:\n        print('refused', exc.backend)\n"
            "anyio.run(main)\n")
    with anyio.fail_after(120):
        out = await anyio.run_process([sys.executable, "-c", code, str(tmp_path / "graph")], check=False)
    assert b"refused graph_store" in out.stdout, out.stderr[-2000:]
    await s.close()


async def test_unreachable_memgraph_is_a_typed_error():
    s = MemgraphGraphStore("bolt://127.0.0.1:1", timeout_s=1, max_retry_time_s=1)
    with pytest.raises(BackendUnavailable, match="Memgraph"):
        await s.open(DIMS)
