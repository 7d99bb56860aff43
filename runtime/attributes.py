"""Things a user has one of at a time - where they live, what they eat - recognised by meaning.

Why: "Moved to Edinburgh" and "Lives in a small village near York" score 0.25 on MiniLM, below
any threshold that keeps unrelated memories apart, so the decision step never sees them together;
and shown "Eats meat" beside "Vegan", the embedded 0.5B model answers ADD. Both are the same
attribute of the user with a new value. A text states an attribute when it is at least
``threshold`` close to that attribute's example phrases, ``margin`` closer than to any other's
(places the user works in or visits have examples of their own), and names no one else: "Brother
lives in Lisbon" is not the user's home. That last check is by words (``about_someone_else``): in
MiniLM's space "Lives in Paris" is about as close to "Brother lives in Lisbon" as to "Lives in Berlin".

Only single-valued attributes belong here: a second job or hobby is an addition, not a change, so
those stay with the LLM's decision and with ``runtime.endings``. Pure: vectors in, names out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

EXAMPLES: dict[str, tuple[str, ...]] = {
    # no well-known place names: MiniLM scores a shared city name higher than the shape of the
    # sentence ("Works in Berlin" scored 0.78 against an example "Lives in Berlin")
    "home": ("Lives in a flat in the city", "Moved to a new city last month", "Lives in a small village",
             "Home is a house by the sea", "Moved from one town to another", "Lives in Ulverston",
             "Moved to Tromso"),
    "diet": ("Is vegetarian", "Eats meat", "Is vegan", "Is pescatarian", "Follows a keto diet"),
    # not a home or a diet, though close in words: places the user works in, visits or came from
    "other": ("Grew up in a small town", "Works in the city centre", "Visiting a city next week",
              "Works at a small shop", "A small company", "Allergic to nuts"),
}
SINGLE_VALUED = ("home", "diet")

_SOMEONE_ELSE = re.compile(
    r"\b(brothers?|sisters?|siblings?|twins?|wife|husband|partner|boyfriend|girlfriend|fianc[eé]e?|spouse|mum|mom|"
    r"mother|dad|father|parents?|sons?|daughters?|kids?|child|children|grand\w*|uncle|aunt|cousin|niece|nephew|"
    r"friends?|neighbou?rs?|colleagues?|boss|roommates?|flatmates?|dog|cat|pet)\b|\w's\b",
    re.IGNORECASE,
)


def about_someone_else(text: str) -> bool:
    """The fact names another person or a pet (or something of theirs): not the user's own attribute."""
    return _SOMEONE_ELSE.search(text) is not None


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


class AttributeClassifier:
    """Nearest attribute by its closest example (vectors normalized, so a dot product is the cosine)."""

    def __init__(self, example_vectors: dict[str, list[list[float]]], *, enabled: Sequence[str], threshold: float,
                 margin: float = 0.0):
        self.example_vectors = example_vectors
        self.enabled = frozenset(enabled)
        self.threshold = threshold
        self.margin = margin

    def scores(self, vector: Sequence[float]) -> dict[str, float]:
        return {name: max(_dot(vector, e) for e in examples) for name, examples in self.example_vectors.items()}

    def classify(self, text: str, vector: Sequence[float]) -> tuple[str, float] | None:
        """The single-valued attribute of the user this text states, with its score; None for
        anything else, and for a text that is not ``margin`` closer to it than to the next (a rule
        that deletes memories acts only on clear cases)."""
        if about_someone_else(text):
            return None
        scores = self.scores(vector)
        best, second = sorted(scores, key=scores.__getitem__, reverse=True)[:2]
        if best not in self.enabled or scores[best] < self.threshold or scores[best] - scores[second] < self.margin:
            return None
        return best, scores[best]
