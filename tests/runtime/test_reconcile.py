import pytest

from runtime import reconcile
from runtime.errors import LLMOutputError
from runtime.model import MemoryRecord, Message, Scope

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


def test_parse_decision_rejects_an_invented_id():
    idmap = reconcile.IdMap(["uuid-a"])
    with pytest.raises(LLMOutputError, match="never shown"):
        reconcile.parse_decision({"memory": [{"id": "5", "text": "x", "event": "UPDATE"}]}, idmap=idmap,
                                 max_chars=100)


@pytest.mark.parametrize("raw", [
    '{"memory": []}', '{"memory": [{"id": "0", "text": "x", "event": "MERGE"}]}',
    '{"memory": [{"id": "new", "text": "", "event": "ADD"}]}', "{}", "garbage",
])
def test_parse_decision_rejects_invalid_shapes(raw):
    with pytest.raises(LLMOutputError):
        reconcile.parse_decision(raw, idmap=reconcile.IdMap(["uuid-a"]), max_chars=100)


def test_parse_decision_maps_ids_and_keeps_first_decision_per_memory():
    idmap = reconcile.IdMap(["uuid-a", "uuid-b"])
    decisions = reconcile.parse_decision({"memory": [
        {"id": "0", "text": "Lives in Paris", "event": "UPDATE", "old_memory": "Lives in Berlin"},
        {"id": "0", "text": "dup", "event": "DELETE"},
        {"id": "1", "text": "", "event": "DELETE"},
        {"id": "new", "text": "Likes jazz", "event": "add"},
    ]}, idmap=idmap, max_chars=100)
    assert decisions == [
        reconcile.Decision("UPDATE", "Lives in Paris", "uuid-a", "Lives in Berlin"),
        reconcile.Decision("DELETE", "", "uuid-b", None),
        reconcile.Decision("ADD", "Likes jazz"),
    ]


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
