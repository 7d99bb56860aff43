"""Graph memory's pure decisions: parsing triples, resolving entities, contradictions, drafts."""

from __future__ import annotations

import datetime as dt
import itertools

import msgspec
import pytest

from runtime import relations as rules
from runtime.errors import LLMOutputError
from runtime.graphs.port import EntityHit, EntityNode, RelationEdge
from runtime.model import JournalEntry, Scope, event_from_entry, replay, replay_relations
from runtime.prompts import relations_schema, render_relations

ALICE = Scope(user_id="alice")
OWNER = ALICE.owner
NOW = "2026-01-02T00:00:00+00:00"


def parse(items, conversation="user: I live in Paris with my dog Rex and I work at Acme"):
    return rules.parse_relations({"relations": items}, owner=OWNER, max_items=4, max_chars=60,
                                 conversation=conversation)


def entity(name: str, *, owner: str = OWNER, tenant: str = "t") -> EntityNode:
    return EntityNode(id=f"id-{name}-{owner}", tenant=tenant, owner=owner, name=name, key=rules.name_key(name))


def edge(rid: str, source: EntityNode, relationship: str, destination: EntityNode, invalid_at=None) -> RelationEdge:
    return RelationEdge(id=rid, tenant="t", scope=ALICE, source_id=source.id, source=source.name,
                        relationship=relationship, destination_id=destination.id, destination=destination.name,
                        valid_at="2026-01-01", invalid_at=invalid_at, created_at="2026-01-01")


def test_first_person_maps_to_the_owner_and_names_are_cleaned():
    triples = parse([{"source": "I", "relationship": "Lives In", "destination": " Paris. "},
                     {"source": "me", "relationship": "has_pet", "destination": "Rex"},
                     {"source": "My", "relationship": "works for", "destination": "Acme"}])
    assert triples == [rules.Triple("alice", "lives_in", "Paris"), rules.Triple("alice", "has_pet", "Rex"),
                       rules.Triple("alice", "works_at", "Acme")]  # "works for" is an alias of works_at


def test_bad_items_are_dropped_and_bad_shapes_are_errors():
    triples = parse([{"source": "I", "relationship": "", "destination": "Paris"},
                     {"source": "I", "relationship": "lives_in", "destination": "Atlantis"},  # not said: invented
                     {"source": "I", "relationship": "likes", "destination": "x" * 61},
                     {"source": "I", "relationship": "is", "destination": "me"},  # a self-loop
                     {"source": "I", "relationship": "lives_in", "destination": "Paris"},
                     {"source": "i", "relationship": "LIVES_IN", "destination": "paris"}])  # a duplicate
    assert triples == [rules.Triple("alice", "lives_in", "Paris")]
    with pytest.raises(LLMOutputError):
        rules.parse_relations('{"relations": 3}', owner=OWNER, max_items=4, max_chars=60)
    with pytest.raises(LLMOutputError):
        rules.parse_relations("not json", owner=OWNER, max_items=4, max_chars=60)


@pytest.mark.parametrize("raw", [
    "KNOWS]->(x) DETACH DELETE x //", "lives_in`]-() MATCH (n) DETACH DELETE n", "a'b\"c{d}", "1starts_with_digit",
    "x" * 41, "", "-- ;",
])
def test_relationships_are_whitelisted_by_shape(raw):
    cleaned = rules.clean_relationship(raw)
    assert cleaned is None or rules.RELATIONSHIP.match(cleaned)
    assert cleaned is None or not set(cleaned) & set("`'\"{}()[]-;/ ")


def test_resolution_by_name_then_by_embedding_only_among_the_owners_entities():
    mine = entity("Acme Corporation")
    theirs = entity("Paris", owner="user:bob")
    ids = (f"new-{i}" for i in itertools.count())
    names = {"acme corp": "Acme Corp", "paris": "Paris", "alice": "alice"}
    resolved = rules.resolve_entities(
        names, tenant="t", owner=OWNER, exact=[entity("alice"), theirs],
        similar={"acme corp": [EntityHit(mine, 0.91)], "paris": [EntityHit(theirs, 0.99)]},
        threshold=0.86, now=NOW, new_id=lambda: next(ids))
    assert resolved["alice"].id == "id-alice-user:alice"
    assert resolved["acme corp"] is mine  # close enough, and alice's own
    assert resolved["paris"].id == "new-0" and resolved["paris"].owner == OWNER  # bob's Paris is never picked
    far = rules.resolve_entities({"acme corp": "Acme Corp"}, tenant="t", owner=OWNER, exact=[],
                                 similar={"acme corp": [EntityHit(mine, 0.5)]}, threshold=0.86, now=NOW)
    assert far["acme corp"].id != mine.id


def test_exclusive_relations_invalidate_and_duplicates_are_not_added():
    alice, berlin, paris, jazz = entity("alice"), entity("Berlin"), entity("Paris"), entity("jazz")
    current = [edge("r1", alice, "lives_in", berlin), edge("r2", alice, "likes", jazz)]
    entities = {e.key: e for e in (alice, berlin, paris, jazz)}
    drafts = rules.plan_relations(
        [rules.Triple("alice", "lives_in", "Paris"), rules.Triple("alice", "likes", "jazz")], entities, current,
        exclusive=["lives_in"], scope=ALICE, tenant="t", now=NOW, cause="turn-2")
    assert [(d.event, d.memory_id if d.event != "ADD" else d.relation.destination) for d in drafts] == [
        ("UPDATE", "r1"), ("ADD", "Paris")]
    invalidated = drafts[0]
    assert invalidated.relation.invalid_at == NOW and invalidated.version == 2 and invalidated.kind == "relation"
    assert drafts[1].relation.valid_at == NOW and drafts[1].relation.invalid_at is None


def test_an_ended_relation_invalidates_the_match_and_adds_nothing():
    alice, rex = entity("alice"), entity("Rex")
    drafts = rules.plan_relations([rules.Triple("alice", "has_pet", "Rex", ended=True)],
                                  {e.key: e for e in (alice, rex)}, [edge("r1", alice, "has_pet", rex)],
                                  exclusive=[], scope=ALICE, tenant="t", now=NOW, cause=None)
    assert [(d.event, d.memory_id) for d in drafts] == [("UPDATE", "r1")]


def test_relation_entries_replay_stream_and_stay_out_of_memories():
    alice, paris = entity("alice"), entity("Paris")
    [added] = rules.plan_relations([rules.Triple("alice", "lives_in", "Paris")], {e.key: e for e in (alice, paris)},
                                   [], exclusive=[], scope=ALICE, tenant="t", now=NOW, cause=None)
    entry = JournalEntry(seq=1, **msgspec.structs.asdict(added))
    assert replay([entry]) == {}
    assert list(replay_relations([entry])) == [added.memory_id]
    event = event_from_entry(entry)
    assert type(event).__name__ == "RelationAdded" and event.destination == "Paris" and event.seq == 1
    assert msgspec.json.decode(msgspec.json.encode(entry), type=JournalEntry) == entry
    old = msgspec.json.decode(b'{"seq": 1, "id": "e", "memory_id": "m", "event": "ADD", "old_memory": null, '
                              b'"new_memory": "x", "scope": {"user_id": "u"}, "tenant": "t", "created_at": "c"}',
                              type=JournalEntry)
    assert old.kind == "memory" and old.relation is None  # entries written before graph memory still decode


def test_prompt_prefix_is_static_and_schema_bounded():
    a = render_relations("user: hi", dt.date(2026, 1, 2))
    b = render_relations("user: something else", dt.date(2026, 1, 2))
    assert a[:-1] == b[:-1] and "something else" in b[-1]["content"]
    schema = relations_schema(4, 60)
    assert schema["properties"]["relations"]["maxItems"] == 4
    assert schema["properties"]["relations"]["items"]["properties"]["source"]["maxLength"] == 60
