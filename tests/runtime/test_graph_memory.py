"""Graph memory through AsyncMemory: real LadybugDB, real journal and MiniLM embedder, scripted LLM.

The relations call runs concurrently with the facts call, so its replies are scripted by name.
"""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path

import anyio
import pytest

from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from runtime.errors import BackendUnavailable, LLMOutputError
from runtime.graphs.ladybug import LadybugGraphStore
from runtime.model import MemoryAdded, RelationAdded, RelationDeleted, RelationInvalidated
from tests.doubles import ScriptedLLM, SwitchableStore


class ApplyFails:
    """A graph store whose writes fail while ``down``: the crash between journal commit and projection."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def apply(self, *args, **kwargs):
        if self.down:
            raise BackendUnavailable("graph store is down (test)", backend="graph_store")
        return await self.inner.apply(*args, **kwargs)

ALICE = {"user_id": "alice"}
BOB = {"user_id": "bob"}


def facts(*items: str) -> dict:
    return {"facts": list(items)}


def rels(*triples) -> dict:
    out = []
    for t in triples:
        item = {"source": t[0], "relationship": t[1], "destination": t[2]}
        if len(t) > 3:
            item["ended"] = t[3]
        out.append(item)
    return {"relations": out}


def triples(relations: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["source"], r["relationship"], r["destination"]) for r in relations}


@pytest.fixture
def graph_config(tmp_path: Path) -> Config:
    return load_config("test", overrides={"data_dir": str(tmp_path / "data"), "graph": {"enabled": True}},
                       environ={})


@pytest.fixture
async def gm(graph_config: Config, embedder, llm: ScriptedLLM):
    async with AsyncMemory(graph_config, llm=llm, embedder=embedder) as m:
        yield m


async def say(memory: AsyncMemory, llm: ScriptedLLM, text: str, memory_facts=(), relations=(), **scope) -> dict:
    llm.push(facts(*memory_facts))
    llm.push_for("relations", rels(*relations))
    return await memory.add(text, **scope)


async def test_i_maps_to_the_owner_and_reads_return_relations(gm: AsyncMemory, llm: ScriptedLLM):
    result = await say(gm, llm, "I live in Berlin and I have a dog named Rex", ["Lives in Berlin"],
                       [("I", "lives in", "Berlin"), ("me", "has_pet", "Rex")], **ALICE)
    assert [r["event"] for r in result["results"]] == ["ADD"]
    assert {(r["event"], r["source"], r["relationship"], r["destination"]) for r in result["relations"]} == {
        ("ADD", "alice", "lives_in", "Berlin"), ("ADD", "alice", "has_pet", "Rex")}
    relations_call = next(c for c in llm.calls if c["name"] == "relations")
    assert "I live in Berlin" in relations_call["messages"][-1]["content"]
    assert relations_call["schema"]["properties"]["relations"]["maxItems"] == gm.config.graph.max_relations
    listed = await gm.get_all(**ALICE)
    assert triples(listed["relations"]) == {("alice", "lives_in", "Berlin"), ("alice", "has_pet", "Rex")}
    found = await gm.search("which city is her home?", **ALICE)
    assert found["relations"][0]["destination"] == "Berlin" and found["relations"][0]["score"] > 0
    assert found["results"][0]["memory"] == "Lives in Berlin"
    assert (await gm.get_all(**BOB))["relations"] == []
    assert await gm.graph.count(gm.config.tenant, "user:alice") == (3, 2)


async def test_a_contradiction_invalidates_keeps_history_and_as_of(gm: AsyncMemory, llm: ScriptedLLM):
    await say(gm, llm, "I live in Berlin", [], [("I", "lives_in", "Berlin")], **ALICE)
    first_head = await gm.head(**ALICE)
    result = await say(gm, llm, "I moved to Paris last month", [], [("I", "moved to", "Paris")], **ALICE)
    assert [(r["event"], r["destination"]) for r in result["relations"]] == [("INVALIDATE", "Berlin"),
                                                                            ("ADD", "Paris")]
    berlin_id = result["relations"][0]["id"]
    assert triples((await gm.get_all(**ALICE))["relations"]) == {("alice", "lives_in", "Paris")}
    everything = (await gm.get_all(include_invalidated=True, **ALICE))["relations"]
    [kept] = [r for r in everything if r["destination"] == "Berlin"]
    assert kept["invalid_at"] is not None and kept["valid_at"] < kept["invalid_at"] or kept["invalid_at"]
    assert [h["event"] for h in await gm.history(berlin_id)] == ["ADD", "UPDATE"]
    then = await gm.get_all(as_of=first_head, **ALICE)
    assert triples(then["relations"]) == {("alice", "lives_in", "Berlin")}
    assert triples((await gm.get_all(as_of=first_head + 2, **ALICE))["relations"]) == {("alice", "lives_in", "Paris")}
    assert "Berlin" not in {r["destination"] for r in (await gm.search("where does she live", **ALICE))["relations"]}
    # an ended relation invalidates without adding
    ended = await say(gm, llm, "I don't live in Paris anymore", [], [("I", "lives_in", "Paris", True)], **ALICE)
    assert [r["event"] for r in ended["relations"]] == ["INVALIDATE"]
    assert (await gm.get_all(**ALICE))["relations"] == []


async def test_entities_resolve_by_name_and_embedding_within_the_owner_only(gm: AsyncMemory, llm: ScriptedLLM):
    bob = await say(gm, llm, "I work at Acme Corporation", [], [("I", "works_at", "Acme Corporation")], **BOB)
    bobs_acme = bob["relations"][0]
    first = await say(gm, llm, "I work at Acme Corp", [], [("I", "works_at", "Acme Corp")], **ALICE)
    alices_acme = (await gm.graph.relations(gm.config.tenant, "user:alice"))[0]
    assert first["relations"][0]["destination"] == "Acme Corp"  # bob's near-identical entity is not a candidate
    bobs_edge = (await gm.graph.relations(gm.config.tenant, "user:bob"))[0]
    assert alices_acme.destination_id != bobs_edge.destination_id and bobs_acme["destination"] == "Acme Corporation"
    # by embedding: "ACME corp." is a new spelling of alice's own entity, and by name: "alice" is the owner
    later = await say(gm, llm, "Acme Corp. has an office in Lyon, alice says", [],
                      [("Acme Corp.", "located_in", "Lyon"), ("alice", "likes", "Lyon")], **ALICE)
    edges = {(e.source_id, e.destination_id) for e in await gm.graph.relations(gm.config.tenant, "user:alice")}
    lyon = next(r for r in later["relations"] if r["relationship"] == "located_in")
    assert lyon["source"] == "Acme Corp"
    owner_id = alices_acme.source_id
    assert any(s == alices_acme.destination_id for s, _ in edges)
    assert sum(1 for s, _ in edges if s == owner_id) == 2  # works_at and likes hang off the same owner entity
    assert await gm.graph.count(gm.config.tenant, "user:alice") == (3, 3)
    # a name much like an existing one but below the threshold stays a different entity
    await say(gm, llm, "I also know Acme Industries", [], [("I", "knows", "Acme Industries")], **ALICE)
    assert await gm.graph.count(gm.config.tenant, "user:alice") == (4, 4)


async def test_relation_events_stream_in_order_with_memory_events(gm: AsyncMemory, llm: ScriptedLLM):
    seen: list = []

    async def consume() -> None:
        async with aclosing(gm.subscribe(**ALICE)) as stream:
            async for event in stream:
                seen.append(event)
                if len(seen) == 4:
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()  # subscribed, and waiting for live events
        await say(gm, llm, "I live in Berlin", ["Lives in Berlin"], [("I", "lives_in", "Berlin")], **ALICE)
        await say(gm, llm, "I moved to Rome", [], [("I", "lives_in", "Rome")], **ALICE)
    assert [type(e) for e in seen] == [MemoryAdded, RelationAdded, RelationInvalidated, RelationAdded]
    assert [e.seq for e in seen] == [1, 2, 3, 4]
    assert seen[2].relation_id == seen[1].relation_id and seen[2].invalid_at is not None
    assert (seen[3].source, seen[3].relationship, seen[3].destination) == ("alice", "lives_in", "Rome")
    replayed = []
    async with aclosing(gm.subscribe(after_seq=1, **ALICE)) as stream:
        async for event in stream:
            replayed.append(event)
            if len(replayed) == 3:
                break
    assert replayed == seen[1:]  # the journal replay gives the same events as the live stream


async def test_delete_all_and_reset_clear_the_graph(gm: AsyncMemory, llm: ScriptedLLM):
    await say(gm, llm, "I live in Berlin", ["Lives in Berlin"], [("I", "lives_in", "Berlin")], **ALICE)
    await say(gm, llm, "I moved to Oslo", [], [("I", "lives_in", "Oslo")], **ALICE)
    await say(gm, llm, "I like chess", [], [("I", "likes", "chess")], **BOB)
    deleted = await gm.delete_all(**ALICE)
    assert deleted["deleted"] == 1 and deleted["deleted_relations"] == 2  # the invalidated one is cleared too
    assert await gm.graph.count(gm.config.tenant, "user:alice") == (0, 0)
    assert (await gm.get_all(include_invalidated=True, **ALICE))["relations"] == []
    log = await gm.history(**ALICE)
    assert [e["event"] for e in log if e["kind"] == "relation"][-2:] == ["DELETE", "DELETE"]
    # seq 1 memory, 2 Berlin, 3 Berlin invalidated, 4 Oslo
    assert triples((await gm.get_all(as_of=4, **ALICE))["relations"]) == {("alice", "lives_in", "Oslo")}
    await gm.reset()
    assert await gm.graph.count(gm.config.tenant, "user:bob") == (0, 0)
    events = []
    async with aclosing(gm.subscribe(after_seq=1, **BOB)) as stream:
        async for event in stream:
            events.append(event)
            break
    assert isinstance(events[0], RelationDeleted)


async def test_cypher_injection_through_facts_names_and_relationships_is_inert(gm: AsyncMemory, llm: ScriptedLLM):
    await say(gm, llm, "I like tea", [], [("I", "likes", "tea")], **BOB)
    evil_name = "x'}) MATCH (n) DETACH DELETE n //"
    evil_rel = "likes]->(n) DETACH DELETE n //"
    text = f"I like {evil_name} and Robert'); DROP TABLE Entity;-- too"
    result = await say(gm, llm, text, [f"Likes {evil_name}"],
                       [("I", evil_rel, evil_name), ("Robert'); DROP TABLE Entity;--", "`KNOWS`", "I")], **ALICE)
    relationships = {r["relationship"] for r in result["relations"]}
    assert all(r.replace("_", "").isalnum() and r.islower() for r in relationships)
    assert evil_name in {r["destination"] for r in result["relations"]}  # kept verbatim, as data
    assert await gm.graph.count(gm.config.tenant, "user:bob") == (2, 1)  # nothing else was touched
    assert triples((await gm.get_all(**BOB))["relations"]) == {("bob", "likes", "tea")}
    assert (await gm.search(evil_name, **ALICE))["relations"][0]["destination"] == evil_name


async def test_invalid_graph_output_is_retried_then_a_typed_error(gm: AsyncMemory, llm: ScriptedLLM):
    llm.push(facts("Likes tea"))
    llm.push_for("relations", "not json", '{"relations": "nope"}')
    with pytest.raises(LLMOutputError, match="relations"):
        await gm.add("I like tea", **ALICE)
    assert await gm.head(**ALICE) == 0  # nothing committed, memory or graph


async def test_the_graph_projection_catches_up_from_the_journal(graph_config: Config, embedder, llm: ScriptedLLM):
    store = ApplyFails(LadybugGraphStore(graph_config.data_path("graph")))
    async with AsyncMemory(graph_config, llm=llm, embedder=embedder, graph_store=store) as memory:
        await say(memory, llm, "I live in Berlin", [], [("I", "lives_in", "Berlin")], **ALICE)
        store.down = True
        with pytest.raises(BackendUnavailable, match="committed to the journal") as caught:
            await say(memory, llm, "I moved to Paris", ["Lives in Paris"], [("I", "lives_in", "Paris")],
                      request_id="r2", **ALICE)
        assert caught.value.committed_seq == 4
        assert await memory.journal.watermark("graph", graph_config.tenant, "user:alice") == 1
    await store.inner.close()
    # a new process: the graph projection is behind the journal and is repaired on open
    async with AsyncMemory(graph_config, llm=llm, embedder=embedder) as memory:
        assert await memory.journal.watermark("graph", graph_config.tenant, "user:alice") == 4
        assert triples((await memory.get_all(**ALICE))["relations"]) == {("alice", "lives_in", "Paris")}
        assert [m["memory"] for m in (await memory.get_all(**ALICE))["results"]] == ["Lives in Paris"]
        again = await memory.add("I moved to Paris", request_id="r2", **ALICE)  # the retry: same answer
        assert [r["event"] for r in again["relations"]] == ["INVALIDATE", "ADD"]
        assert await memory.head(**ALICE) == 4


async def test_an_unreachable_graph_store_before_the_commit_commits_nothing(graph_config, embedder, llm):
    store = SwitchableStore(LadybugGraphStore(graph_config.data_path("graph")))
    async with AsyncMemory(graph_config, llm=llm, embedder=embedder, graph_store=store) as memory:
        store.down = True
        with pytest.raises(BackendUnavailable):
            await say(memory, llm, "I live in Berlin", ["Lives in Berlin"], [("I", "lives_in", "Berlin")], **ALICE)
        assert await memory.head(**ALICE) == 0
    await store.inner.close()


async def test_graph_off_keeps_the_plain_shapes(memory: AsyncMemory, llm: ScriptedLLM):
    llm.push(facts("Likes tea"))
    result = await memory.add("I like tea", **ALICE)
    assert "relations" not in result and "relations" not in await memory.get_all(**ALICE)
    assert [c["name"] for c in llm.calls] == ["facts"]


def test_graph_config_layers_and_a_missing_memgraph_url():
    from runtime.errors import ConfigError
    from runtime.graphs import make_graph_store
    from runtime.graphs.ladybug import LadybugGraphStore

    config = load_config("local", environ={"MEMSTREAM_GRAPH__ENABLED": "true", "MEMSTREAM_MEMGRAPH_URL": "x"})
    assert config.graph.enabled and isinstance(make_graph_store(config), LadybugGraphStore)
    assert str(make_graph_store(config).path).endswith("graph")  # under data_dir (per shard on Ray)
    assert load_config("local", environ={}).graph.enabled is False  # off unless asked for
    memgraph = load_config("local", overrides={"graph_store": {"provider": "memgraph"}}, environ={})
    with pytest.raises(ConfigError, match="MEMSTREAM_MEMGRAPH_URL"):
        make_graph_store(memgraph)
    with pytest.raises(ConfigError, match="graph_store"):
        load_config("local", overrides={"graph_store": {"provider": "neo4j-ish"}}, environ={})
