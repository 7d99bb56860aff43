"""The rules that settle changes without the LLM (endings, single-valued attributes) and the guard
on the LLM's own changes: pure, no model, no store."""

import pytest

from runtime import attributes, endings, reconcile
from runtime.attributes import AttributeClassifier
from runtime.model import MemoryRecord, Scope
from runtime.vectors.port import Hit

SCOPE = Scope(user_id="u")


def record(memory_id: str, text: str) -> MemoryRecord:
    return MemoryRecord(id=memory_id, text=text, scope=SCOPE, created_at="t0")


def hit(memory_id: str, text: str, score: float) -> Hit:
    return Hit(record(memory_id, text), score)


@pytest.mark.parametrize(("fact", "ending"), [
    ("Pixel passed away", True), ("Left the orchestra", True), ("No longer drinks coffee", True),
    ("Sold surfboard", True), ("Done surfing", True), ("No more espresso for me", True),
    ("Lives in Paris", False), ("Likes jazz", False), ("Has a cat named Mia", False),
])
def test_an_ending_is_recognised_by_what_it_says(fact, ending):
    assert endings.is_ending(fact) is ending


def test_an_ending_ends_the_close_memories_that_name_the_same_thing():
    near = [hit("a", "Has a cat named Pixel", 0.57), hit("b", "Pixel is 12 years old", 0.5),
            hit("c", "Adopted a beagle", 0.35), hit("d", "Pixel likes tuna", 0.2)]
    ended = endings.ended_memories("Pixel passed away", near, threshold=0.3)
    assert [h.record.id for h in ended] == ["a", "b"]  # closest first; "d" is too far, "c" names another pet
    # a stem names the same thing in another form (surfing / surfs / surfboard)
    assert endings.ended_memories("Sold surfboard", [hit("s", "Surfs every Sunday", 0.45)], threshold=0.3)
    # the ending words themselves name nothing: "No longer works" does not end "Works as a nurse"
    assert endings.ended_memories("No longer works", [hit("n", "Works as a nurse", 0.6)], threshold=0.3) == []


def test_the_clauses_of_what_the_user_said_that_state_an_end():
    said = "I stopped playing the cello, my wrist hurts too much, so I left the orchestra too. Hi!"
    assert endings.ending_clauses(said) == ["I stopped playing the cello", "I left the orchestra too"]
    assert endings.named_things("I don't drink coffee anymore") == {"coffee"}


def classifier() -> AttributeClassifier:
    # three-dimensional stand-ins for embeddings: x = home, y = diet, z = other
    return AttributeClassifier({"home": [[1.0, 0.0, 0.0]], "diet": [[0.0, 1.0, 0.0]], "other": [[0.0, 0.0, 1.0]]},
                               enabled=["home", "diet"], threshold=0.4, margin=0.05)


def test_a_fact_states_an_attribute_of_the_user_only_when_clearly_close_to_it():
    c = classifier()
    assert c.classify("Lives in Paris", [0.9, 0.1, 0.3]) == ("home", 0.9)
    assert c.classify("Likes jazz", [0.1, 0.3, 0.0]) is None  # close to nothing
    assert c.classify("Small clinic", [0.46, 0.0, 0.44]) is None  # not clearly nearer to home than to other
    assert c.classify("Works in Berlin", [0.3, 0.0, 0.8]) is None  # nearer to other
    # someone else's home or diet is not the user's, however close in meaning
    assert c.classify("Brother lives in Lisbon", [0.9, 0.0, 0.0]) is None
    assert c.classify("Sister is vegan", [0.0, 0.9, 0.0]) is None
    assert AttributeClassifier(c.example_vectors, enabled=["diet"], threshold=0.4).classify(
        "Lives in Paris", [0.9, 0.1, 0.0]) is None


@pytest.mark.parametrize(("text", "other"), [
    ("Brother Tomas lives in Lisbon", True), ("Mum's birthday is on March 3rd", True),
    ("Husband Peter and I moved to Edinburgh", True), ("Moved to Edinburgh last month", False),
    ("Is vegan", False), ("Lives in a small village near York", False),
])
def test_facts_naming_someone_else_are_recognised_by_their_words(text, other):
    assert attributes.about_someone_else(text) is other


def test_rules_settle_endings_attributes_and_said_endings_before_the_llm_is_asked():
    facts = ["Pixel passed away", "Moved to Edinburgh", "Is vegan", "Eats vegan cheese", "Likes jazz"]
    neighbours = [
        [hit("cat", "Has a cat named Pixel", 0.57), hit("age", "Pixel is 12 years old", 0.5)],
        [hit("bro", "Brother lives in Leeds", 0.4)],
        [hit("meat", "Eats meat", 0.44)],
        [hit("meat", "Eats meat", 0.4), hit("cheese", "Loves cheddar cheese", 0.5)],
        [],
    ]
    plan = reconcile.plan_decisions(
        facts, neighbours, threshold=0.3,
        fact_attributes=[None, ("home", 0.52), ("diet", 0.85), ("diet", 0.6), None],
        held={"home": [record("york", "Lives in a village near York")],
              "diet": [record("meat", "Eats meat"), record("steak", "Fan of steak and burgers")]},
        said_endings=[("I stopped playing the cello", [hit("cello", "Plays the cello", 0.6),
                                                       hit("orch", "Plays in an orchestra", 0.3)])],
        said_threshold=0.4)
    assert plan.settled == [
        reconcile.Decision("DELETE", "", "cat", "Has a cat named Pixel"),
        reconcile.Decision("DELETE", "", "age", "Pixel is 12 years old"),
        reconcile.Decision("UPDATE", "Moved to Edinburgh", "york", "Lives in a village near York"),
        reconcile.Decision("UPDATE", "Is vegan", "meat", "Eats meat"),  # the most typical diet fact replaces
        reconcile.Decision("DELETE", "", "steak", "Fan of steak and burgers"),
        reconcile.Decision("DELETE", "", "cello", "Plays the cello"),  # the orchestra is too far from the clause
        reconcile.Decision("ADD", "Likes jazz"),
    ]
    # what is left goes to the LLM, without the memories the rules already changed
    assert plan.asked == ["Eats vegan cheese"] and list(plan.shown) == ["cheese"]
    assert set(plan.ended) == {"cat", "age", "york", "meat", "steak", "cello"}


def test_the_llm_changes_only_memories_about_the_same_thing():
    idmap = reconcile.IdMap(["job", "city"])
    raw = {"decisions": [{"fact": "Gym every Tuesday", "event": "UPDATE", "id": "0"},
                         {"fact": "Moved to Paris", "event": "UPDATE", "id": "1"}]}
    decisions = reconcile.parse_fact_decisions(
        raw, facts=["Gym every Tuesday", "Moved to Paris"], idmap=idmap,
        similarity=[{"job": 0.33}, {"city": 0.56}], change_at=0.45)
    assert decisions == [reconcile.Decision("ADD", "Gym every Tuesday"),  # the job memory stays
                         reconcile.Decision("UPDATE", "Moved to Paris", "city")]


@pytest.mark.parametrize(("fact", "kept"), [
    ("Last month", False), ("By the way", False), ("Tuesdays", False), ("Good", False),
    ("Moved to Paris", True), ("Is 34", True), ("Miles Davis especially", True), ("7am to 7pm", True),
])
def test_fragments_split_off_a_fact_are_not_facts(fact, kept):
    assert reconcile.parse_facts({"facts": [fact]}, max_facts=4, max_chars=80) == ([fact] if kept else [])
