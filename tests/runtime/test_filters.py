import pytest

from runtime.errors import InvalidRequest
from runtime.filters import And, Cond, Not, Or, matches, parse_filters


def test_parse_shorthand_and_operators():
    assert parse_filters({"color": "red"}) == Cond("color", "eq", "red")
    assert parse_filters({"n": {"gte": 1, "lt": 5}}) == And((Cond("n", "gte", 1), Cond("n", "lt", 5)))
    assert parse_filters({"OR": [{"a": 1}, {"NOT": [{"b": {"in": [1, 2]}}]}]}) == Or(
        (Cond("a", "eq", 1), Not((Cond("b", "in", (1, 2)),)))
    )
    assert parse_filters({"tag": "*"}) == Cond("tag", "exists", True)
    assert parse_filters(None) is None and parse_filters({}) is None


@pytest.mark.parametrize("bad", [
    {"color": {"regex": ".*"}}, {"n": {"gt": "x"}}, {"AND": []}, {"AND": {"a": 1}}, {"bad key!": 1},
    {"n": {"in": []}}, {"n": {}}, {"n": {"eq": {"nested": 1}}}, {"n": {"contains": 5}}, "color=red",
    {"$where": "1"},
])
def test_bad_filters_are_rejected_with_a_clear_message(bad):
    with pytest.raises(InvalidRequest):
        parse_filters(bad)


def test_too_deep_or_too_many_conditions_are_rejected():
    deep: dict = {"a": 1}
    for _ in range(12):
        deep = {"AND": [deep]}
    with pytest.raises(InvalidRequest, match="deeper"):
        parse_filters(deep)
    with pytest.raises(InvalidRequest, match="more than"):
        parse_filters({"OR": [{f"k{i}": i} for i in range(100)]})


META = {"color": "red", "n": 3, "tags": ["a", "b"], "nested": {"x": 1.5}, "flag": True}


@pytest.mark.parametrize("filters,expected", [
    ({"color": "red"}, True), ({"color": {"ne": "red"}}, False), ({"missing": {"ne": 1}}, True),
    ({"n": {"in": [1, 3]}}, True), ({"n": {"nin": [1, 3]}}, False), ({"n": {"gt": 3}}, False),
    ({"n": {"gte": 3, "lte": 3}}, True), ({"color": {"contains": "ed"}}, True), ({"tags": "b"}, True),
    ({"nested.x": {"lt": 2}}, True), ({"flag": True}, True), ({"flag": 1}, False),
    ({"OR": [{"color": "blue"}, {"n": 3}]}, True), ({"NOT": [{"color": "red"}]}, False),
    ({"missing": "*"}, False), ({"color": "*"}, True),
])
def test_matches(filters, expected):
    assert matches(parse_filters(filters), META) is expected
