"""The pure scoring of ``memstream eval-memory``: matching, the invented-content rule, per-turn
verdicts, aggregation, the dataset format, and the shipped dataset itself. No LLM, no store."""

from __future__ import annotations

import pytest
import yaml

from scripts.eval_memory import DEFAULT_DATASET, load_dataset
from scripts.memory_dataset import DatasetError, parse_dataset
from scripts.memory_matching import (
    Group,
    capitalised_words,
    content_words,
    describe_fact,
    fact_matches,
    group_matches,
    invented_reasons,
    keyword_in,
    stem_matches,
    tokenize,
)
from scripts.memory_scoring import TurnRecord, breakdown, metrics, score_conversation, worst_failures


# ---- matching -----------------------------------------------------------------------------
def test_tokenize_folds_case_accents_negations_and_numbers():
    assert tokenize("Zürich, I don't drink COFFEE") == ["zurich", "i", "do", "not", "drink", "coffee"]
    assert tokenize("two kids, 7am to 07pm, the third") == ["2", "kids", "7", "am", "to", "7", "pm", "the", "3"]
    assert tokenize("Alice\u2019s cat isn\u2019t here") == ["alice", "s", "cat", "is", "not", "here"]


@pytest.mark.parametrize(("stem", "word", "expected"), [
    ("allerg", "allergic", True), ("allerg", "allergy", True), ("allerg", "allergies", True),
    ("vegetarian", "vegetarian", True), ("vegetarian", "vegetarians", True),
    ("cat", "cats", True), ("cat", "catalog", False), ("cat", "catch", False),
    ("law", "lawyer", False), ("tea", "team", False), ("box", "boxes", True),
    ("surf", "surfing", True), ("surf", "surfboard", False), ("pharmac", "pharmacist", True),
    ("34", "34", True), ("3", "34", False), ("3", "3rd", False),
])
def test_a_stem_matches_its_word_forms_only(stem, word, expected):
    assert stem_matches(stem, word) is expected


def test_keywords_and_phrases_match_case_insensitively():
    words = tokenize("Favourite author is Ursula K. Le Guin; drinks Green Tea")
    assert keyword_in("le guin", words) and keyword_in("green tea", words)
    assert not keyword_in("guin le", words) and not keyword_in("black tea", words)
    assert keyword_in("Vegetarian", tokenize("is vegetarian")) and keyword_in("vegetarian", tokenize("Vegetarian"))


def test_groups_all_any_none():
    coffee = Group(all=("coffee",), none=("not", "longer", "quit"))
    assert group_matches(coffee, "Drinks two cups of coffee every morning")
    assert not group_matches(coffee, "No longer drinks coffee")
    assert not group_matches(coffee, "Doesn't drink coffee anymore")  # n't is read as "not"
    diet = Group(any=("vegetarian", "vegan", "no meat"))
    assert group_matches(diet, "Is Vegetarian") and group_matches(diet, "Eats no meat")
    assert not group_matches(diet, "Eats meat")
    both = Group(all=("allerg", "peanut"))
    assert group_matches(both, "Has a peanut allergy") and not group_matches(both, "Likes peanuts")
    assert fact_matches((Group(all=("berlin",)), Group(all=("paris",))), "Lives in Paris")
    assert describe_fact((Group(all=("allerg", "peanut")), Group(any=("a", "b"), none=("x",)))) == \
        "allerg+peanut OR (a|b) !x"


# ---- invented content ---------------------------------------------------------------------
SAID = ["I'm Alice, I moved to Berlin and I'm vegetarian", "We have two kids", "Actually I moved to Paris"]


@pytest.mark.parametrize("memory", [
    "Name is Alice", "Lives in Berlin", "User is vegetarian", "Has 2 kids", "Has one kid",
    "Paris has become my home now",  # a paraphrase that keeps a said word passes
    "Moved to Paris in 2026", "Is a Vegetarian", "Alice's city is Paris",
])
def test_grounded_memories_are_not_invented(memory):
    assert invented_reasons(memory, SAID, allowed_numbers={"2025", "2026", "2027"}) == []


@pytest.mark.parametrize(("memory", "reason"), [
    ("Has 3 kids", "number 3 never said"),
    ("Moved to Paris in 1999", "number 1999 never said"),
    ("Lives in Paris with Bob", "name 'Bob' never said"),
    ("Moved from Rome to Paris", "name 'Rome' never said"),
    ("Enjoys swimming and chess", "no content word in common with the user's turns"),
    ("Likes jazz", "no content word in common with the user's turns"),  # "likes" is framing, not evidence
])
def test_invented_memories_say_why(memory, reason):
    assert reason in invented_reasons(memory, SAID)


def test_names_and_content_words():
    assert capitalised_words("Emma starts school. Then Max visits Oslo; Lisbon next") == ["Max", "Oslo"]
    assert capitalised_words("User told the Assistant OK, Alice's I") == ["Alice"]
    assert content_words("User likes the Berlin marathon in October") == ["berlin", "marathon", "october"]
    assert invented_reasons("Is ok", ["hello"]) == []  # nothing to check


# ---- per-turn verdicts and aggregation ----------------------------------------------------
README = {
    "conversations": [{
        "id": "alice", "part": "tune",
        "turns": [
            {"say": "I'm Alice, I moved to Berlin and I'm vegetarian", "kind": "fact", "topic": "identity",
             "remember": {"name": [{"all": ["alice"]}], "city": [{"all": ["berlin"], "none": ["paris"]}],
                          "diet": [{"any": ["vegetarian", "no meat"]}]}},
            {"say": "thanks!", "kind": "chitchat", "topic": "chitchat"},
            {"say": "I work at a bank", "kind": "fact", "topic": "work", "remember": {"job": [{"all": ["bank"]}]}},
            {"say": "Actually I moved to Paris last month", "kind": "update", "topic": "places",
             "remember": {"city": [{"all": ["paris"]}]}, "forget": ["city"]},
        ],
    }],
}


def rec(memories, *events, error=None, calls=None, ms=100.0):
    return TurnRecord(events=[{"event": e, "memory": m} for e, m in events], memories=list(memories),
                      latency_ms=ms, llm_calls=calls or {"facts": 1}, error=error)


def test_the_readme_conversation_scores_after_each_turn_and_at_end():
    [conv] = parse_dataset(README).conversations
    records = [
        rec(["Name is Alice", "Lives in Berlin"], ("ADD", "Name is Alice"), ("ADD", "Lives in Berlin")),
        rec(["Name is Alice", "Lives in Berlin", "Says thanks"], ("ADD", "Says thanks")),
        rec(["Name is Alice", "Lives in Berlin", "Says thanks", "Works at a bank"], ("ADD", "Works at a bank"),
            calls={"facts": 1, "decision": 1}),
        rec(["Lives in Paris, moved from Berlin", "Says thanks", "Works at a bank"],
            ("UPDATE", "Lives in Paris, moved from Berlin"), ("DELETE", "Name is Alice"),
            calls={"facts": 1, "decision": 2}, ms=300.0),
    ]
    score = score_conversation(conv, records)
    first, chat, job, update = score.turns
    assert (first.present_after, first.missing_after, first.ok_after) == (["name", "city"], ["diet"], False)
    assert first.checked_at_end == ["name", "diet"]  # city was replaced by the update
    assert (first.missing_at_end, first.ok_at_end) == (["name", "diet"], False)
    assert chat.changed and not chat.ok_after and chat.ok_at_end is None
    assert job.ok_after and job.ok_at_end
    assert update.ok_after and update.ok_at_end and update.lingering_after == []  # "none: paris" ignores the move
    assert update.expected["forget"] == {"city": "berlin !paris"}
    assert [m.text for m in score.memories] == ["Name is Alice", "Lives in Berlin", "Says thanks", "Works at a bank",
                                                "Lives in Paris, moved from Berlin"]
    assert [m.first_seen_turn for m in score.memories] == [0, 0, 1, 2, 3]
    assert not any(m.invented for m in score.memories)

    m = metrics(score.turns, score.memories)
    assert m["fact_turns"] == 2 and m["fact_turns_remembered_after"] == 1
    assert m["fact_turns_remembered_after_pct"] == 50.0 and m["facts_remembered_after_pct"] == 75.0
    assert (m["fact_turns_checked_at_end"], m["fact_turns_remembered_at_end"]) == (2, 1)
    assert m["update_turns_resolved_after_pct"] == 100.0 and m["update_turns_with_update_or_delete"] == 1
    assert (m["chitchat_turns"], m["chitchat_turns_that_changed"]) == (1, 1)
    assert (m["memories_stored"], m["memories_invented"], m["memories_invented_pct"]) == (5, 0, 0.0)
    assert m["llm_calls"] == 7 and m["llm_calls_per_turn"] == 1.75
    assert m["llm_calls_by_name"] == {"decision": 3, "facts": 4}
    assert (m["latency_ms_p50"], m["latency_ms_p95"]) == (100.0, 300.0)

    split = breakdown([score])
    assert set(split["by_topic"]) == {"identity", "chitchat", "work", "places"}
    assert split["by_topic"]["places"]["update_turns"] == 1 and split["summary"] == m

    worst = worst_failures([score])
    assert [r["say"] for r in worst["fact_not_remembered"]] == [conv.turns[0].say]
    assert worst["fact_not_remembered"][0]["missing_at_end"] == ["name", "diet"]
    assert worst["chitchat_changed"][0]["stored"] == ["ADD: Says thanks"]
    assert worst["update_not_resolved"] == [] and worst["invented"] == []


def test_a_lingering_old_value_a_lost_fact_and_an_invented_memory():
    [conv] = parse_dataset(README).conversations
    kept = ["Name is Alice", "Lives in Berlin", "Is vegetarian"]
    records = [
        rec(kept),
        rec(kept),
        rec([*kept, "Works at Deutsche Bank since 2011"]),
        rec(["Name is Alice", "Lives in Berlin", "Lives in Paris", "Is vegetarian"], ("ADD", "Lives in Paris")),
    ]
    score = score_conversation(conv, records)
    first, _, job, update = score.turns
    assert first.ok_after and first.ok_at_end
    assert not job.ok_at_end and job.missing_at_end == ["job"]  # remembered, then lost
    assert update.lingering_after == ["city"] and not update.ok_after and update.lingering_at_end == ["city"]
    invented = [m for m in score.memories if m.invented]
    assert [m.text for m in invented] == ["Works at Deutsche Bank since 2011"]
    assert invented[0].reasons == ["number 2011 never said", "name 'Deutsche' never said"]
    m = metrics(score.turns, score.memories)
    assert m["fact_turns_lost_later"] == 1 and m["update_turns_resolved_after"] == 0
    assert m["update_turns_with_update_or_delete"] == 0 and m["memories_invented"] == 1
    worst = worst_failures([score])
    assert worst["update_not_resolved"][0]["still_there_after"] == ["city"]
    assert worst["invented"][0]["first_seen_after"] == "I work at a bank"


def test_failures_come_worst_first_and_are_capped():
    turns = [{"say": f"fact {i}", "kind": "fact", "topic": "work",
              "remember": {f"a{i}": [{"all": [f"alpha{i}"]}], f"b{i}": [{"all": [f"beta{i}"]}]}} for i in range(7)]
    [conv] = parse_dataset({"conversations": [{"id": "c", "part": "heldout", "turns": turns}]}).conversations
    records = [rec(["alpha0", "alpha1", "alpha2", "alpha3", "alpha4", "alpha5"]) for _ in range(7)]
    records[-1] = rec(["alpha1"])  # at the end only alpha1 is left
    worst = worst_failures([score_conversation(conv, records)], n=3)["fact_not_remembered"]
    assert [r["say"] for r in worst] == ["fact 6", "fact 0", "fact 2"]  # fact 6: nothing; then dataset order


# ---- the dataset format -------------------------------------------------------------------
def _one(turn: dict) -> dict:
    return {"conversations": [{"id": "c", "part": "tune", "turns": [turn]}]}


@pytest.mark.parametrize(("data", "message"), [
    ({"conversations": []}, "no conversations"),
    (_one({"say": "hi", "kind": "chitchat", "topic": "chitchat", "extra": 1}), "unknown field `extra`"),
    (_one({"say": "hi", "kind": "smalltalk", "topic": "chitchat"}), "kind"),
    (_one({"say": "hi", "kind": "chitchat", "topic": "chitchat", "remember": {"x": [{"all": ["hi"]}]}}),
     "neither remembers nor forgets"),
    (_one({"say": "hi", "kind": "fact", "topic": "chitchat", "remember": {"x": [{"all": ["hi"]}]}}),
     "topic 'chitchat'"),
    (_one({"say": "I like tea", "kind": "fact", "topic": "diet"}), "has 'remember'"),
    (_one({"say": "no tea", "kind": "update", "topic": "diet", "forget": ["tea"]}), "not a current fact"),
    (_one({"say": "tea", "kind": "fact", "topic": "diet", "remember": {"tea": [{"none": ["x"]}]}}),
     "without 'all' or 'any'"),
    (_one({"say": "tea", "kind": "fact", "topic": "diet", "remember": {"tea": [{"all": ["!!"]}]}}),
     "empty keyword"),
    (_one({"say": "tea", "kind": "fact", "topic": "diet", "remember": {"tea": [{"all": ["a"], "some": ["b"]}]}}),
     "unknown field `some`"),
    (_one({"say": " ", "kind": "chitchat", "topic": "chitchat"}), "'say' is empty"),
    ({"conversations": [{"id": "c", "part": "tune", "turns": [{"say": "x", "kind": "chitchat", "topic": "chitchat"}]},
                        {"id": "c", "part": "heldout", "turns": [{"say": "x", "kind": "chitchat",
                                                                   "topic": "chitchat"}]}]}, "used twice"),
    ({"conversations": [{"id": "C 1", "part": "tune", "turns": []}]}, "ids are lower-case"),
    ({"conversations": [{"id": "c", "part": "train", "turns": []}]}, "part"),
    (yaml.safe_load("conversations: [{id: c, part: tune, turns: [{say: x, kind: fact, topic: diet, "
                    "remember: {meat: [{all: [meat], any: [no]}]}}]}]"), "Expected `str`, got `bool`"),
])
def test_the_loader_refuses_what_breaks_the_format(data, message):
    with pytest.raises(DatasetError, match=message):
        parse_dataset(data)


def test_an_update_may_forget_what_an_earlier_turn_remembered_and_redefine_it():
    data = {"conversations": [{"id": "c", "part": "tune", "turns": [
        {"say": "I live in Oslo", "kind": "fact", "topic": "places", "remember": {"city": [{"all": ["oslo"]}]}},
        {"say": "Now in Rome", "kind": "update", "topic": "places", "remember": {"city": [{"all": ["rome"]}]},
         "forget": ["city"]},
        {"say": "And now Lima", "kind": "update", "topic": "places", "remember": {"city": [{"all": ["lima"]}]},
         "forget": ["city"]},
    ]}]}
    [conv] = parse_dataset(data).conversations
    assert [t.forget for t in conv.turns] == [(), ("city",), ("city",)]


# ---- the shipped dataset ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DEFAULT_DATASET)


def test_the_dataset_is_big_enough_and_split(dataset):
    tune, heldout = dataset.part("tune"), dataset.part("heldout")
    turns = lambda convs: sum(len(c.turns) for c in convs)  # noqa: E731
    assert len(dataset.conversations) >= 8 and turns(dataset.conversations) >= 60
    assert 0.5 <= turns(tune) / turns(dataset.conversations) <= 0.7
    for part in (tune, heldout):  # similar in kind: every part has every kind of turn
        assert {t.kind for c in part for t in c.turns} == {"fact", "update", "chitchat"}
    says = [t.say for c in dataset.conversations for t in c.turns]
    assert "I'm Alice, I moved to Berlin and I'm vegetarian" in says
    assert "Actually I moved to Paris last month" in says


def test_every_fact_matches_the_turn_that_states_it(dataset):
    """The user's own words are a correct memory: each fact must match them, and an old value's
    matcher must not match the words that end it."""
    for conv in dataset.conversations:
        defined = {}
        for turn in conv.turns:
            for name in turn.forget:
                assert not fact_matches(defined.pop(name), turn.say), (conv.id, turn.say, name)
            for name, fact in turn.remember.items():
                assert fact_matches(fact, turn.say), (conv.id, turn.say, name)
            defined.update(turn.remember)


def test_the_users_own_words_are_never_invented(dataset):
    for conv in dataset.conversations:
        said = [t.say for t in conv.turns]
        for index, turn in enumerate(conv.turns):
            assert invented_reasons(turn.say, said[:index + 1]) == [], turn.say
