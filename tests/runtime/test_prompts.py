import datetime as dt
import json

from runtime import prompts


def test_static_prefix_is_identical_across_users():
    a = prompts.render_extraction("user: I live in Rome")
    b = prompts.render_extraction("user: I have a cat")
    assert a[:-1] == b[:-1]
    assert b[-1]["content"] == "user: I have a cat"


def test_verdict_prompts_put_the_memory_and_the_fact_or_turn_last():
    for render, label in ((prompts.render_after_fact, "New fact"), (prompts.render_after_turn, "User said")):
        messages = render("Lives in Rome", "Moved to Milan")
        assert messages[:-1] == render("", "")[:-1]
        assert messages[-1]["content"] == f'Memory: "Lives in Rome"\n{label}: "Moved to Milan"'
        assert messages[-2]["content"] in ('{"still_true": "yes"}', '{"still_true": "no"}')


def test_verdict_examples_say_yes_at_least_as_often_as_no():
    for examples in (prompts.AFTER_FACT_EXAMPLES, prompts.AFTER_TURN_EXAMPLES):
        answers = [json.loads(answer)["still_true"] for _, answer in examples]
        assert answers.count("yes") >= answers.count("no") > 0


def test_schemas_are_bounded_and_verdicts_enumerated():
    facts = prompts.facts_schema(4, 60)["properties"]["facts"]
    assert facts["maxItems"] == 4 and facts["items"]["maxLength"] == 60
    assert prompts.verdict_schema()["properties"]["still_true"]["enum"] == ["yes", "no"]


def test_examples_are_valid_json_answers():
    for _, answer in prompts.EXTRACTION_EXAMPLES + prompts.AFTER_FACT_EXAMPLES + prompts.AFTER_TURN_EXAMPLES:
        json.loads(answer)
