import pytest

from runtime import reconcile
from runtime.errors import LLMOutputError
from runtime.model import MemoryRecord, Message, Scope
from runtime.vectors.port import Hit

SCOPE = Scope(user_id="alice")


def record(memory_id: str, text: str, version: int = 1) -> MemoryRecord:
    return MemoryRecord(id=memory_id, text=text, scope=SCOPE, created_at="t0", version=version)


def test_parse_facts_trims_dedupes_and_bounds():
    raw = '{"facts": ["Lives in Berlin.", "lives in berlin", "  Is   vegetarian ", "", "x' + "y" * 100 + '"]}'
    assert reconcile.parse_facts(raw, max_facts=4, max_chars=80) == ["Lives in Berlin", "Is vegetarian"]


def test_parse_facts_drops_facts_not_grounded_in_the_conversation():
    conversation = "user: I moved to Berlin and I am vegetarian"
    raw = {"facts": ["Lives in Berlin", "Works as a nurse", "Is vegetarian"]}
    facts = reconcile.parse_facts(raw, max_facts=4, max_chars=80, conversation=conversation)
    assert facts == ["Lives in Berlin", "Is vegetarian"]


@pytest.mark.parametrize("raw", ["not json", '{"facts": "x"}', "[1, 2]", '{"facts": [1]}'])
def test_parse_facts_rejects_malformed_output(raw):
    with pytest.raises(LLMOutputError):
        reconcile.parse_facts(raw, max_facts=4, max_chars=80)


def test_idmap_shows_small_ids_and_resolves_back():
    idmap = reconcile.IdMap(["uuid-a", "uuid-b", "uuid-a"])
    assert idmap.small_ids == ["0", "1"]
    assert idmap.resolve("1") == "uuid-b"
    assert idmap.resolve("7") is None


def hits(*pairs: tuple[str, str, float]) -> list[Hit]:
    return [Hit(record(memory_id, text), score) for memory_id, text, score in pairs]


def test_a_fact_with_no_close_memory_is_added_without_asking():
    plan = reconcile.plan_decisions(
        ["Has a daughter named Emma", "Moved to Paris", "Lives in Berlin"],
        [hits(("m1", "Works as a nurse", 0.08)),
         hits(("m2", "Lives in Berlin", 0.43), ("m1", "Works as a nurse", 0.1)),
         hits(("m2", "Lives in Berlin", 1.0))],
        threshold=0.35)
    assert plan.settled == [reconcile.Decision("ADD", "Has a daughter named Emma")]
    assert plan.asked == ["Moved to Paris"]  # "Lives in Berlin" is stored verbatim: nothing to ask
    assert plan.candidates == [{"m2": 0.43}] and list(plan.shown) == ["m2"]


def test_decisions_map_ids_back_and_every_fact_gets_an_outcome():
    idmap = reconcile.IdMap(["uuid-a", "uuid-b"])
    facts = ["Moved to Paris", "Lives in Lyon", "No longer has a dog", "Likes jazz", "Is vegetarian", "Has a cat"]
    decisions = reconcile.parse_fact_decisions({"decisions": [
        {"fact": facts[0], "event": "UPDATE", "id": "0"},
        {"fact": facts[1], "event": "UPDATE", "id": "0"},  # the same memory again: kept as a new fact
        {"fact": facts[2], "event": "DELETE", "id": "1"},
        {"fact": facts[3], "event": "add", "id": "new"},
        {"fact": facts[4], "event": "NONE", "id": "1"},
    ]}, facts=facts, idmap=idmap)  # the answer left the last fact out: it is added, not dropped
    assert decisions == [
        reconcile.Decision("UPDATE", "Moved to Paris", "uuid-a"),
        reconcile.Decision("ADD", "Lives in Lyon"),
        reconcile.Decision("DELETE", "", "uuid-b"),
        reconcile.Decision("ADD", "Likes jazz"),
        reconcile.Decision("ADD", "Has a cat"),
    ]


def test_a_none_for_a_memory_that_is_not_close_keeps_the_fact():
    idmap = reconcile.IdMap(["uuid-a"])
    raw = {"decisions": [{"fact": "Likes tea a lot", "event": "NONE", "id": "0"},
                         {"fact": "Drinks green tea", "event": "NONE", "id": "0"}]}
    decisions = reconcile.parse_fact_decisions(raw, facts=["Likes tea a lot", "Drinks green tea"], idmap=idmap,
                                               similarity=[{"uuid-a": 0.86}, {"uuid-a": 0.5}], known_at=0.7)
    assert decisions == [reconcile.Decision("ADD", "Drinks green tea")]


def test_parse_fact_decisions_rejects_an_invented_id():
    with pytest.raises(LLMOutputError, match="never shown"):
        reconcile.parse_fact_decisions({"decisions": [{"fact": "x", "event": "UPDATE", "id": "5"}]},
                                       facts=["x"], idmap=reconcile.IdMap(["uuid-a"]))


@pytest.mark.parametrize("raw", [
    '{"decisions": [{"fact": "x", "event": "MERGE", "id": "0"}]}', '{"decisions": ["x"]}', "{}", "garbage",
    '{"memory": []}',
])
def test_parse_fact_decisions_rejects_invalid_shapes(raw):
    with pytest.raises(LLMOutputError):
        reconcile.parse_fact_decisions(raw, facts=["x"], idmap=reconcile.IdMap(["uuid-a"]))


def test_build_entries_turns_decisions_into_versioned_drafts():
    ids = iter(f"id-{i}" for i in range(100))
    existing = {"m1": record("m1", "Lives in Berlin", version=2), "m2": record("m2", "Has a dog")}
    drafts = reconcile.build_entries(
        [
            reconcile.Decision("UPDATE", "Lives in Paris", "m1"),
            reconcile.Decision("DELETE", "", "m2"),
            reconcile.Decision("NONE", "Has a dog", "m2"),
            reconcile.Decision("ADD", "Likes jazz"),
            reconcile.Decision("ADD", "Has a dog"),  # exact duplicate of an existing memory
        ],
        existing=existing, scope=SCOPE, tenant="t", metadata={"k": 1}, now="t1", cause="req-1",
        new_id=lambda: next(ids),
    )
    assert [(d.event, d.memory_id, d.old_memory, d.new_memory, d.version) for d in drafts] == [
        ("UPDATE", "m1", "Lives in Berlin", "Lives in Paris", 3),
        ("DELETE", "m2", "Has a dog", None, 2),
        ("ADD", "id-3", None, "Likes jazz", 1),
    ]
    assert all(d.cause == "req-1" for d in drafts)


def test_update_with_identical_text_is_not_a_change():
    drafts = reconcile.build_entries([reconcile.Decision("UPDATE", "Same", "m1")],
                                     existing={"m1": record("m1", "Same")}, scope=SCOPE, tenant="t",
                                     metadata={}, now="t1", cause=None)
    assert drafts == []


def test_verbatim_decisions_skip_system_messages():
    messages = [Message("system", "be nice"), Message("user", "I like tea"), Message("assistant", "Noted")]
    assert [d.text for d in reconcile.verbatim_decisions(messages)] == ["I like tea", "Noted"]


def test_facts_grounded_only_in_questions_are_dropped():
    conversation = "user: I'm vegan. Is it going to rain tomorrow?\nassistant: Probably not."
    raw = {"facts": ["Is vegan", "Is going to rain tomorrow"]}
    assert reconcile.parse_facts(raw, max_facts=4, max_chars=80, conversation=conversation) == ["Is vegan"]
    assert reconcile.parse_facts({"facts": ["Boil an egg for an hour"]}, max_facts=4, max_chars=80,
                                 conversation="user: How long should I boil an egg for?") == []
