"""``memstream eval-memory``'s runner end to end on the test config: the real engine, stores and
embedder, with the LLM replaced by a scripted double that answers by the turn it is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.config import load_config
from scripts.eval_memory import evaluate, format_failures, format_table, load_dataset, main
from scripts.memory_dataset import DatasetError, parse_dataset
from tests.doubles import ScriptedLLM

DATA = {"conversations": [
    {"id": "alice", "part": "tune", "turns": [
        {"say": "I'm Alice and I live in Berlin", "kind": "fact", "topic": "identity",
         "remember": {"name": [{"all": ["alice"]}], "city": [{"all": ["berlin"]}]}},
        {"say": "Lovely weather today", "kind": "chitchat", "topic": "chitchat"},
        {"say": "Actually I moved to Paris", "kind": "update", "topic": "places",
         "remember": {"city": [{"all": ["paris"]}]}, "forget": ["city"]},
    ]},
    {"id": "bob", "part": "heldout", "turns": [
        {"say": "I have a dog called Rex", "kind": "fact", "topic": "pets", "remember": {"dog": [{"all": ["rex"]}]}},
        {"say": "thanks", "kind": "chitchat", "topic": "chitchat"},
    ]},
]}
FACTS = {  # what the scripted extractor answers for each turn
    "I'm Alice and I live in Berlin": ["Name is Alice", "Lives in Berlin"],
    "Lovely weather today": ["Weather is sunny in Rome"],  # chit-chat stored, and invented
    "Actually I moved to Paris": ["Lives in Paris"],
    "I have a dog called Rex": [],  # a fact missed
    "thanks": [],
}


def extract(messages: list[dict[str, str]]) -> dict:
    turn = messages[-1]["content"].removeprefix("user: ")
    return {"facts": FACTS[turn]}


def decide(messages: list[dict[str, str]], schema: dict) -> dict:
    """One answer per asked fact, read off the schema the engine sends (each fact and the ids it
    may change): "Lives in Paris" replaces the Berlin memory, anything else is new."""
    body = messages[-1]["content"]
    existing = json.loads(body.split("Existing memories:\n", 1)[1].split("\nNew facts:\n", 1)[0])
    texts = {m["id"]: m["text"] for m in existing}
    out = []
    for item in schema["properties"]["decisions"]["prefixItems"]:
        add, change = item["anyOf"]
        fact = add["properties"]["fact"]["enum"][0]
        berlin = [i for i in change["properties"]["id"]["enum"] if "Berlin" in texts[i]]
        if "Paris" in fact and berlin:
            out.append({"fact": fact, "event": "UPDATE", "id": berlin[0]})
        else:
            out.append({"fact": fact, "event": "ADD", "id": "new"})
    return {"decisions": out}


class SchemaScriptedLLM(ScriptedLLM):
    """The double, with decision replies that also see the call's schema."""

    async def complete_json(self, messages, schema, *, name):
        if name == "decision":
            self.push_for("decision", lambda m: decide(m, schema))
        return await super().complete_json(messages, schema, name=name)


async def test_the_runner_scores_a_scripted_run(tmp_path: Path, embedder):
    # every fact with a stored neighbour is asked about: the decision calls do not hang on similarity
    config = load_config("test", overrides={"data_dir": str(tmp_path / "data"),
                                            "memory": {"decision_threshold": -1.0}}, environ={})
    llm = SchemaScriptedLLM()
    llm.push_for("facts", *[extract] * 20)
    lines: list[str] = []
    report = await evaluate(config, parse_dataset(DATA), concurrency=2, config_name="test", llm=llm,
                            embedder=embedder, progress=lines.append)

    tune, heldout = report["parts"]["tune"]["summary"], report["parts"]["heldout"]["summary"]
    assert (tune["fact_turns"], tune["fact_turns_remembered_after"], tune["fact_turns_remembered_at_end"]) == (1, 1, 1)
    assert tune["fact_turns_checked_at_end"] == 1  # the city was replaced; the name is still checked
    assert (tune["update_turns"], tune["update_turns_resolved_after"],
            tune["update_turns_resolved_at_end"]) == (1, 1, 1)
    assert tune["update_turns_with_update_or_delete"] == 1
    assert (tune["chitchat_turns"], tune["chitchat_turns_that_changed"]) == (1, 1)
    assert (tune["memories_stored"], tune["memories_invented"]) == (4, 1)
    # turn 1: extraction only (nothing stored yet); turn 2: extraction and decision; turn 3: the new
    # home replaces the old one by rule (runtime/attributes.py), without a decision call
    assert tune["llm_calls_by_name"] == {"decision": 1, "facts": 3} and tune["llm_calls_per_turn"] == 1.33
    assert tune["errors"] == 0 and tune["latency_ms_p95"] >= tune["latency_ms_p50"] > 0
    assert (heldout["fact_turns_remembered_after"], heldout["chitchat_turns_that_changed"]) == (0, 0)
    assert heldout["memories_stored"] == 0 and heldout["memories_invented_pct"] is None
    assert report["parts"]["tune"]["turns_per_s"] > 0
    assert report["all"]["summary"]["turns"] == 5
    assert report["parts"]["tune"]["by_topic"]["chitchat"]["chitchat_turns_that_changed"] == 1
    assert report["llm_calls"]["calls"] == 6 and report["llm_calls"]["unattributed"] == 0

    [chat] = report["failures"]["chitchat_changed"]
    assert chat["say"] == "Lovely weather today" and chat["stored"] == ["ADD: Weather is sunny in Rome"]
    [invented] = report["failures"]["invented"]
    assert invented["memory"] == "Weather is sunny in Rome" and invented["reasons"] == ["name 'Rome' never said"]
    [missed] = report["failures"]["fact_not_remembered"]
    assert missed["conversation"] == "bob" and missed["missing_after"] == ["dog"]
    assert report["failures"]["update_not_resolved"] == []

    alice = next(c for c in report["conversations"] if c["id"] == "alice")
    update = alice["turns"][2]
    assert [e["event"] for e in update["events"]] == ["UPDATE"] and update["llm_calls"] == {"facts": 1}
    assert sorted(update["memories_after"]) == ["Lives in Paris", "Name is Alice", "Weather is sunny in Rome"]
    assert alice["memories_at_end"] == update["memories_after"] and "extraction" in update["timings_ms"]

    json.dumps(report)  # what main writes
    assert any("alice" in line and "UPDATE 'Lives in Paris'" in line for line in lines)
    table = format_table(report)
    assert "TUNE" in table and "HELDOUT" in table and "  chitchat" in table and "100%  1/1" in table
    assert "'Weather is sunny in Rome': name 'Rome' never said" in format_failures(report)


def test_main_refuses_a_broken_dataset_before_starting_anything(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("conversations: [{id: c, part: tune, turns: [{say: hi, kind: chitchat, topic: diet}]}]")
    with pytest.raises(DatasetError, match="topic 'chitchat'"):
        main(["--config", "test", "--dataset", str(bad), "--out", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()
    bad.write_text("conversations: [")
    with pytest.raises(SystemExit, match="not valid YAML"):
        load_dataset(bad)
