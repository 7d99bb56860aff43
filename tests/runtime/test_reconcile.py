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


def plan_for(*facts: tuple[str, dict[str, tuple[str, float]]]) -> reconcile.DecisionPlan:
    """A plan whose every fact is asked, each against the given {id: (text, similarity)} memories."""
    return reconcile.plan_decisions(
        [fact for fact, _ in facts],
        [hits(*[(memory_id, text, score) for memory_id, (text, score) in near.items()]) for _, near in facts],
        threshold=0.3)


def test_facts_are_paired_with_their_close_memories_and_each_memory_is_checked_once():
    plan = plan_for(("Pixel passed away", {"m1": ("Has a cat named Pixel", 0.56), "m2": ("Pixel is 12", 0.63)}),
                    ("Has a cat named Mia", {"m1": ("Has a cat named Pixel", 0.7), "m4": ("Likes tea", 0.1)}))
    assert reconcile.pair_questions(plan) == [(0, "m2"), (0, "m1"), (1, "m1")]
    assert reconcile.memories_to_check(plan) == ["m1", "m2"]


def test_what_the_user_said_is_checked_not_the_assistant():
    said = [Message("system", "be nice"), Message("user", "I moved to Milan"), Message("assistant", "Nice!"),
            Message("user", " and I sold my car ")]
    assert reconcile.user_statements(said) == "I moved to Milan\nand I sold my car"
    assert reconcile.user_statements([Message("assistant", "The user lives in Rome")]) == "The user lives in Rome"


PIXEL = (("Pixel passed away", {"m1": ("Has a cat named Pixel", 0.56), "m2": ("Pixel is 12", 0.63),
                                "m3": ("Adopted a beagle", 0.31)}),)


def test_a_fact_changes_every_memory_it_ends():
    plan = plan_for(*PIXEL)
    after_fact = {(0, "m1"): False, (0, "m2"): False, (0, "m3"): False}
    after_turn = {"m1": False, "m2": False, "m3": True}  # a memory ends only when both verdicts say so
    assert reconcile.decide_from_verdicts(plan, after_fact, after_turn, known_at=0.85) == [
        reconcile.Decision("UPDATE", "Pixel passed away", "m2"),  # the closest one becomes the fact
        reconcile.Decision("DELETE", "", "m1"),
    ]


def test_one_verdict_alone_ends_nothing():
    plan = plan_for(*PIXEL)
    everything_ends = {"m1": False, "m2": False, "m3": False}
    assert reconcile.decide_from_verdicts(plan, {}, everything_ends, known_at=0.85) == [
        reconcile.Decision("ADD", "Pixel passed away")]
    assert reconcile.decide_from_verdicts(plan, {(0, m): False for m in everything_ends}, {}, known_at=0.85) == [
        reconcile.Decision("ADD", "Pixel passed away")]


def test_a_fact_that_leaves_its_memories_true_is_added_unless_already_known():
    plan = plan_for(("Emma is 7 years old", {"m1": ("Has a daughter named Emma", 0.6)}),
                    ("Is a vegetarian", {"m2": ("Is vegetarian", 0.97)}),
                    ("Drinks green tea", {"m3": ("Drinks coffee", 0.4)}))
    assert reconcile.decide_from_verdicts(plan, {(0, "m1"): True, (1, "m2"): True}, {"m1": True},
                                          known_at=0.85) == [
        reconcile.Decision("ADD", "Emma is 7 years old"),
        reconcile.Decision("ADD", "Drinks green tea"),
    ]


def test_a_memory_is_changed_by_one_fact_of_a_turn_only():
    plan = plan_for(("No longer drinks coffee", {"m1": ("Drinks coffee", 0.53)}),
                    ("Drinks green tea", {"m1": ("Drinks coffee", 0.36)}))
    assert reconcile.decide_from_verdicts(plan, {(0, "m1"): False, (1, "m1"): False}, {"m1": False},
                                          known_at=0.85) == [
        reconcile.Decision("UPDATE", "No longer drinks coffee", "m1"),
        reconcile.Decision("ADD", "Drinks green tea"),
    ]


@pytest.mark.parametrize("raw, still_true", [('{"still_true": "yes"}', True), ({"still_true": "no"}, False)])
def test_parse_verdict(raw, still_true):
    assert reconcile.parse_verdict(raw) is still_true


@pytest.mark.parametrize("raw", ['{"still_true": "maybe"}', "{}", "[]", "garbage"])
def test_parse_verdict_rejects_other_answers(raw):
    with pytest.raises(LLMOutputError):
        reconcile.parse_verdict(raw)
