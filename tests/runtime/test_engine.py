"""AsyncMemory end to end on the real embedded stores and the real MiniLM embedder, with the
LLM replaced by a scripted double (the real LLM runs in tests/e2e)."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from runtime.engine import AsyncMemory
from runtime.errors import BackendUnavailable, InvalidRequest, LLMOutputError, NotFound, Overloaded
from runtime.events import ResyncRequired
from tests.conftest import make_edge
from tests.doubles import ScriptedLLM, SwitchableStore

ALICE = {"user_id": "alice"}


def facts(*items: str) -> dict:
    return {"facts": list(items)}


async def test_add_then_update_keeps_one_city_and_a_full_history(memory: AsyncMemory, llm: ScriptedLLM):
    llm.push(facts("Name is Alice", "Lives in Berlin", "Is vegetarian"))
    first = await memory.add([{"role": "user", "content": "I'm Alice, I moved to Berlin and I'm vegetarian"}],
                             **ALICE)
    assert [r["event"] for r in first["results"]] == ["ADD", "ADD", "ADD"]
    assert len(llm.calls) == 1  # nothing existed yet: no decision call

    def decide(messages):
        prompt = messages[-1]["content"]
        berlin = next(line for line in prompt.splitlines() if "Berlin" in line)
        assert "Lives in Paris" in prompt and '"id": "' in berlin
        small_id = berlin.split('"id": "')[1].split('"')[0]
        assert "Is vegetarian" not in prompt  # not similar to the fact: not shown
        return {"decisions": [{"fact": "Lives in Paris", "event": "UPDATE", "id": small_id}]}

    llm.push(facts("Lives in Paris"), decide)
    second = await memory.add("Actually I moved to Paris last month", **ALICE)
    [change] = second["results"]
    assert change["event"] == "UPDATE" and change["previous_memory"] == "Lives in Berlin"
    assert "UUID" not in llm.calls[-1]["messages"][-1]["content"]
    hits = (await memory.search("where does she live?", **ALICE))["results"]
    assert hits[0]["memory"] == "Lives in Paris"
    assert not any("Berlin" in h["memory"] for h in hits)
    history = await memory.history(change["id"])
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history] == [
        ("ADD", None, "Lives in Berlin"), ("UPDATE", "Lives in Berlin", "Lives in Paris")]
    assert [h["version"] for h in history] == [1, 2]


async def test_a_new_unrelated_fact_is_added_without_a_decision_call(memory: AsyncMemory, llm: ScriptedLLM):
    """Regression: the decision call answered "no change" for new, unrelated facts, and
    they were lost. A fact with no similar stored memory is an ADD; the LLM is not asked."""
    llm.push(facts("Lives in Berlin", "Is vegetarian"))
    await memory.add("I live in Berlin and I'm vegetarian", **ALICE)
    llm.push(facts("Works as a nurse at the city hospital", "Is allergic to peanuts"))
    result = await memory.add("I work as a nurse at the city hospital. I am allergic to peanuts.", **ALICE)
    assert [(r["event"], r["memory"]) for r in result["results"]] == [
        ("ADD", "Works as a nurse at the city hospital"), ("ADD", "Is allergic to peanuts")]
    assert [c["name"] for c in llm.calls] == ["facts", "facts"]


async def test_delete_decision_and_none(memory: AsyncMemory, llm: ScriptedLLM):
    await memory.add("I have a dog", infer=False, **ALICE)
    llm.push(facts("No longer has a dog"), {"decisions": [{"fact": "No longer has a dog", "event": "DELETE", "id": "0"}]})
    result = await memory.add("My dog is gone, I no longer have a dog", **ALICE)
    assert [r["event"] for r in result["results"]] == ["DELETE"]
    assert (await memory.get_all(**ALICE))["results"] == []
    llm.push(facts("Likes tea"))
    await memory.add("I like tea", **ALICE)
    llm.push(facts("Likes tea a lot"), {"decisions": [{"fact": "Likes tea a lot", "event": "NONE", "id": "0"}]})
    assert (await memory.add("I like tea a lot, as I said", **ALICE))["results"] == []
    calls = len(llm.calls)
    llm.push(facts("Likes tea"))  # stored verbatim: known without a decision call
    assert (await memory.add("I like tea", **ALICE))["results"] == []
    assert len(llm.calls) == calls + 1


async def test_invalid_llm_output_is_retried_then_a_typed_error(memory: AsyncMemory, llm: ScriptedLLM):
    llm.push("not json", facts("Likes tea"))
    assert [r["event"] for r in (await memory.add("I like tea", **ALICE))["results"]] == ["ADD"]
    llm.push("{broken", '{"facts": 3}')
    with pytest.raises(LLMOutputError, match="2 times"):
        await memory.add("I like coffee", **ALICE)
    invented = {"decisions": [{"fact": "Likes green tea", "event": "UPDATE", "id": "42"}]}
    llm.push(facts("Likes green tea"), invented, invented)
    with pytest.raises(LLMOutputError, match="never shown"):
        await memory.add("I like green tea", **ALICE)
    assert [m["memory"] for m in (await memory.get_all(**ALICE))["results"]] == ["Likes tea"]


async def test_request_id_makes_add_idempotent(memory: AsyncMemory, llm: ScriptedLLM):
    llm.push(facts("Likes jazz"))
    first = await memory.add("I like jazz", request_id="turn-1", **ALICE)
    again = await memory.add("I like jazz", request_id="turn-1", **ALICE)
    assert again == first and len(llm.calls) == 1
    assert await memory.head(**ALICE) == 1


async def test_bad_input_gets_clear_errors(memory: AsyncMemory):
    with pytest.raises(InvalidRequest, match="at least one"):
        await memory.add("hi", infer=False)
    with pytest.raises(InvalidRequest, match="messages"):
        await memory.add([{"role": "user"}], infer=False, **ALICE)
    with pytest.raises(InvalidRequest, match="operator"):
        await memory.search("x", filters={"k": {"regex": "."}}, **ALICE)
    with pytest.raises(InvalidRequest, match="metadata"):
        await memory.add("x", infer=False, metadata={"big": "x" * 20_000}, **ALICE)
    with pytest.raises(InvalidRequest, match="limit"):
        await memory.get_all(limit=0, **ALICE)
    with pytest.raises(NotFound):
        await memory.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        await memory.update("not-an-id", "text")
    with pytest.raises(NotFound):
        await memory.history("00000000-0000-0000-0000-000000000000")


async def test_scopes_tenants_filters_and_hierarchical_search(memory: AsyncMemory):
    await memory.add("likes hiking in the alps", infer=False, user_id="alice", metadata={"topic": "sport", "n": 1})
    await memory.add("prefers short answers", infer=False, user_id="alice", agent_id="helper",
                     metadata={"topic": "style", "n": 2})
    await memory.add("session: planning a trip to Rome", infer=False, user_id="alice", agent_id="helper",
                     run_id="r1", metadata={"topic": "trip", "n": 3})
    await memory.add("likes hiking too", infer=False, user_id="bob")
    await memory.add("secret of another tenant", infer=False, user_id="alice", tenant="other")

    found = (await memory.search("hiking", user_id="alice", limit=10))["results"]
    assert {r["memory"] for r in found} == {"likes hiking in the alps", "prefers short answers",
                                            "session: planning a trip to Rome"}
    run_only = (await memory.search("hiking", user_id="alice", agent_id="helper", run_id="r1", limit=3))["results"]
    assert [r["memory"] for r in run_only] == ["session: planning a trip to Rome"]
    widened = (await memory.search("hiking", user_id="alice", agent_id="helper", run_id="r1", limit=3,
                                   fallback=True))["results"]
    assert len(widened) == 3
    filtered = await memory.get_all(user_id="alice", filters={"OR": [{"topic": "sport"}, {"n": {"gte": 3}}]})
    assert {r["memory"] for r in filtered["results"]} == {"likes hiking in the alps",
                                                          "session: planning a trip to Rome"}
    assert (await memory.get_all(user_id="alice", tenant="other"))["results"][0]["memory"] == "secret of another tenant"
    other_id = (await memory.get_all(user_id="alice", tenant="other"))["results"][0]["id"]
    with pytest.raises(NotFound):
        await memory.get(other_id)  # default tenant cannot read it
    page1 = await memory.get_all(user_id="alice", limit=2)
    page2 = await memory.get_all(user_id="alice", limit=2, offset=2)
    assert len(page1["results"]) == 2 and len(page2["results"]) == 1


async def test_update_delete_delete_all_reset_and_as_of(memory: AsyncMemory):
    added = await memory.add("Lives in Berlin", infer=False, **ALICE)
    memory_id = added["results"][0]["id"]
    await memory.add("Has a cat", infer=False, **ALICE)
    await memory.update(memory_id, "Lives in Paris", metadata={"moved": True})
    assert (await memory.get(memory_id))["memory"] == "Lives in Paris"
    assert {m["memory"] for m in (await memory.get_all(as_of=1, **ALICE))["results"]} == {"Lives in Berlin"}
    assert {m["memory"] for m in (await memory.get_all(as_of=2, **ALICE))["results"]} == {"Lives in Berlin",
                                                                                          "Has a cat"}
    await memory.delete(memory_id)
    with pytest.raises(NotFound):
        await memory.get(memory_id)
    assert (await memory.delete_all(**ALICE))["deleted"] == 1
    await memory.add("Bob likes chess", infer=False, user_id="bob")
    assert (await memory.reset())["deleted"] == 1
    assert (await memory.get_all(user_id="bob"))["results"] == []
    log = await memory.history(**ALICE)
    assert [e["event"] for e in log] == ["ADD", "ADD", "UPDATE", "DELETE", "DELETE"]
    assert [e["seq"] for e in log] == [1, 2, 3, 4, 5]
    assert {m["memory"] for m in (await memory.get_all(as_of=3, **ALICE))["results"]} == {"Lives in Paris", "Has a cat"}
    assert [e["seq"] for e in await memory.history(since_seq=3, **ALICE)] == [4, 5]


async def test_parallel_adds_for_one_user_are_serialized_without_duplicates(memory: AsyncMemory):
    async def add(i: int) -> None:
        await memory.add(f"fact number {i}", infer=False, **ALICE)

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(add, i)
    log = await memory.history(**ALICE)
    assert [e["seq"] for e in log] == list(range(1, 13))
    assert len((await memory.get_all(**ALICE))["results"]) == 12


async def test_store_outage_fails_clearly_and_catches_up(config, embedder, llm):
    store = SwitchableStore(make_edge(config))
    async with AsyncMemory(config, llm=llm, embedder=embedder, vector_store=store) as memory:
        await memory.add("first", infer=False, **ALICE)
        store.down = True
        with pytest.raises(BackendUnavailable, match="committed to the journal") as caught:
            await memory.add("second", infer=False, request_id="r2", **ALICE)
        assert caught.value.committed_seq == 2
        with pytest.raises(BackendUnavailable):
            await memory.search("first", **ALICE)
        store.down = False
        again = await memory.add("second", infer=False, request_id="r2", **ALICE)  # retry: same result
        assert again["results"][0]["memory"] == "second"
        await memory.add("third", infer=False, **ALICE)  # catches the projection up first
        assert {m["memory"] for m in (await memory.get_all(**ALICE))["results"]} == {"first", "second", "third"}
        assert await memory.head(**ALICE) == 3
    await store.close()


async def test_llm_outage_commits_nothing(memory: AsyncMemory, llm: ScriptedLLM):
    llm.push(BackendUnavailable("connection refused", backend="llm"))
    with pytest.raises(BackendUnavailable):
        await memory.add("I like tea", **ALICE)
    assert await memory.head(**ALICE) == 0


async def test_subscribe_replays_then_streams_live_in_order(memory: AsyncMemory):
    await memory.add("one", infer=False, **ALICE)
    await memory.add("two", infer=False, **ALICE)
    seen: list[int] = []

    async def consume() -> None:
        async with aclosing(memory.subscribe(after_seq=1, **ALICE)) as stream:
            async for event in stream:
                seen.append(event.seq)
                if len(seen) == 4:
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()  # replayed, and waiting for live events
        for text in ("three", "four", "five"):
            await memory.add(text, infer=False, **ALICE)
    assert seen == [2, 3, 4, 5]


async def test_a_slow_subscriber_is_told_to_resync(config, embedder, llm):
    from runtime.events import EventHub

    async with AsyncMemory(config, llm=llm, embedder=embedder, hub=EventHub(capacity=2)) as memory:
        seen: list[int] = []
        async with aclosing(memory.subscribe(**ALICE)) as stream:
            for i in range(5):
                await memory.add(f"m{i}", infer=False, **ALICE)
                if i == 0:
                    seen.append((await anext(stream)).seq)  # subscribed and caught up
            with pytest.raises(ResyncRequired) as caught:
                async for event in stream:
                    seen.append(event.seq)
        # what it received is gapless and the resume point is right after it: nothing is lost
        assert seen == list(range(1, caught.value.from_seq + 1))


async def test_full_mailbox_is_overloaded_not_unbounded(config, embedder):
    gate = anyio.Event()

    class SlowLLM(ScriptedLLM):
        async def complete_json(self, messages, schema, *, name):
            await gate.wait()
            return '{"facts": []}'

    async with AsyncMemory(config, llm=SlowLLM(), embedder=embedder) as memory:
        outcomes: list[object] = []
        excess = 3
        refused = anyio.Event()

        async def add(i: int) -> None:
            try:
                outcomes.append(await memory.add(f"turn {i}", **ALICE))
            except Overloaded as exc:
                outcomes.append(exc)
                if len(outcomes) == excess:  # only refusals can come back while the LLM is held
                    refused.set()

        async with anyio.create_task_group() as tg:
            for i in range(config.memory.mailbox_capacity + excess):
                tg.start_soon(add, i)
            with anyio.fail_after(60):  # a safety net: too few refusals would leave this waiting
                await refused.wait()
            gate.set()
        assert sum(isinstance(o, Overloaded) for o in outcomes) == excess


async def test_a_committed_change_reaches_live_subscribers_while_the_index_is_down(config, embedder, llm):
    """Regression: an add committed to the journal whose index write failed was not
    published, so live subscribers missed it; and a retry with the same request id answered from
    the journal without bringing the index up to date."""
    store = SwitchableStore(make_edge(config))
    async with AsyncMemory(config, llm=llm, embedder=embedder, vector_store=store) as memory:
        seen: list[int] = []
        delivered = anyio.Event()

        async def consume(task_status=anyio.TASK_STATUS_IGNORED) -> None:
            async with aclosing(memory.subscribe(**ALICE)) as events:
                task_status.started()
                async for event in events:
                    seen.append(event.seq)
                    delivered.set()
                    return

        async with anyio.create_task_group() as tg:
            await tg.start(consume)
            store.down = True
            with pytest.raises(BackendUnavailable, match="committed to the journal"):
                await memory.add("durable", infer=False, request_id="r1", **ALICE)
            with anyio.fail_after(60):  # a safety net for a hang, not a wait
                await delivered.wait()
        assert seen == [1]
        store.down = False
        await memory.add("durable", infer=False, request_id="r1", **ALICE)  # the retry alone catches up
        assert [m["memory"] for m in (await memory.get_all(**ALICE))["results"]] == ["durable"]
        assert await memory.head(**ALICE) == 1
    await store.close()


async def test_metadata_nested_past_what_stores_read_back_is_refused(memory: AsyncMemory):
    """Regression: metadata nested ~200 deep was stored, then every read of the owner failed
    in Qdrant Edge (serde's recursion limit)."""
    deep: object = "leaf"
    for _ in range(200):
        deep = [deep]
    with pytest.raises(InvalidRequest, match="deeper"):
        await memory.add("x", infer=False, metadata={"d": deep}, **ALICE)
    shallow: object = "leaf"
    for _ in range(10):
        shallow = {"k": shallow}
    await memory.add("x", infer=False, metadata={"d": shallow}, **ALICE)
    assert (await memory.get_all(**ALICE))["results"][0]["metadata"] == {"d": shallow}
