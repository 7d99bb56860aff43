import datetime as dt
import json

from runtime import prompts


def test_static_prefix_is_identical_across_users_and_days():
    a = prompts.render_extraction("user: I live in Rome", dt.date(2026, 1, 1))
    b = prompts.render_extraction("user: I have a cat", dt.date(2026, 11, 25))
    assert a[:-1] == b[:-1]
    assert "2026-11-25" in b[-1]["content"] and "I have a cat" in b[-1]["content"]
    assert all("2026" not in m["content"] for m in a[:-1])


def test_decision_prompt_shows_small_ids_and_puts_data_last():
    messages = prompts.render_decision([{"id": "0", "text": "Lives in Rome"}], ["Moved to Milan"], dt.date(2026, 2, 2))
    assert messages[:-1] == prompts.render_decision([], [], dt.date(2020, 1, 1))[:-1]
    assert '"id": "0"' in messages[-1]["content"] and "Moved to Milan" in messages[-1]["content"]


def test_schemas_are_bounded_and_ids_are_enumerated():
    facts = prompts.facts_schema(4, 60)["properties"]["facts"]
    assert facts["maxItems"] == 4 and facts["items"]["maxLength"] == 60
    decision = prompts.decision_schema(["Moved to Milan", "Likes jazz"], [["0"], ["0", "1"]])
    answers = decision["properties"]["decisions"]
    assert answers["minItems"] == answers["maxItems"] == 2 and answers["items"] is False
    add, change = answers["prefixItems"][1]["anyOf"]
    assert add["properties"]["id"]["enum"] == ["new"] and change["properties"]["id"]["enum"] == ["0", "1"]
    assert change["properties"]["fact"]["enum"] == ["Likes jazz"]
    json.dumps(decision)


def test_examples_are_valid_json_answers():
    for _, answer in prompts.EXTRACTION_EXAMPLES + prompts.DECISION_EXAMPLES:
        json.loads(answer)
