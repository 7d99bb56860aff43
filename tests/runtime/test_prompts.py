import datetime as dt
import json

from runtime import prompts


def test_static_prefix_is_identical_across_users():
    a = prompts.render_extraction("user: I live in Rome")
    b = prompts.render_extraction("user: I have a cat")
    assert a[:-1] == b[:-1]
    assert b[-1]["content"] == "user: I have a cat"


def test_decision_prompt_shows_small_ids_and_puts_data_last():
    messages = prompts.render_decision([{"id": "0", "text": "Lives in Rome"}], ["Moved to Milan"])
    assert messages[:-1] == prompts.render_decision([], [])[:-1]
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
