"""Mem0's three ways of naming the scope, reduced to memstream's scope ids and metadata filter."""

from __future__ import annotations

import pytest

from gateway.rest.errors import FieldError
from gateway.rest.scopes import resolve
from runtime.filters import parse_filters


def test_top_level_ids_v1():
    assert resolve({"user_id": "alice", "agent_id": None, "run_id": "", "app_id": None}, None) == (
        {"user_id": "alice"}, None)


def test_v2_and_list_with_scope_and_metadata():
    ids, metadata = resolve({}, {"AND": [{"user_id": "alice"}, {"agent_id": {"eq": "bot"}},
                                         {"metadata": {"topic": "food", "lang": "en"}}, {"score": {"gte": 3}}]})
    assert ids == {"user_id": "alice", "agent_id": "bot"}
    assert metadata == {"AND": [{"topic": "food"}, {"lang": "en"}, {"score": {"gte": 3}}]}
    parse_filters(metadata)  # memstream's filter syntax


def test_v3_flat_filters_and_nested_and():
    ids, metadata = resolve({}, {"user_id": "alice", "AND": [{"AND": [{"run_id": "r1"}, {"topic": "x"}]}]})
    assert ids == {"user_id": "alice", "run_id": "r1"} and metadata == {"topic": "x"}


def test_or_keeps_metadata_and_unfolds_mem0_metadata_objects():
    ids, metadata = resolve({"user_id": "a"}, {"OR": [{"metadata": {"topic": "food"}}, {"NOT": [{"x": 1}]}]})
    assert ids == {"user_id": "a"}
    assert metadata == {"OR": [{"topic": "food"}, {"NOT": [{"x": 1}]}]}
    parse_filters(metadata)


def test_v1_metadata_equality_joins_the_filter():
    assert resolve({"user_id": "a"}, None, metadata={"k": "v"}) == ({"user_id": "a"}, {"k": "v"})


@pytest.mark.parametrize("top, filters, field", [
    ({}, None, "user_id"),
    ({}, {"metadata": {"k": 1}}, "user_id"),
    ({"app_id": "shop"}, None, "app_id"),
    ({}, {"AND": [{"user_id": "*"}]}, "filters.AND[0].user_id"),
    ({}, {"AND": [{"user_id": {"in": ["a", "b"]}}]}, "filters.AND[0].user_id"),
    ({"user_id": "a"}, {"user_id": "b"}, "filters.user_id"),
    ({}, {"OR": [{"user_id": "a"}, {"user_id": "b"}]}, "filters.OR[0].user_id"),
    ({"user_id": "a"}, {"categories": {"contains": "food"}}, "filters.categories"),
    ({"user_id": "a"}, {"AND": []}, "filters.AND"),
    ({"user_id": "a"}, {"AND": ["x"]}, "filters.AND[0]"),
    ({"user_id": "a"}, {"metadata": "x"}, "filters.metadata"),
    ({"user_id": "a"}, {"OR": [{"k": 1}, 2]}, "filters.OR"),
])
def test_what_cannot_be_served_is_refused_naming_the_field(top, filters, field):
    with pytest.raises(FieldError) as refused:
        resolve(top, filters)
    assert refused.value.field == field and field in str(refused.value)
