"""Fact-extraction quality on a fixed set of turns: JSON validity, precision and recall.

Runs the real extraction prompt and schema through the configured LLM (the embedded vLLM +
Qwen2.5-Coder-0.5B-Instruct by default) and writes ``bench/results/extraction_quality.json``. A
fact counts as correct when it mentions one of the turn's expected keywords; recall is the share
of the expected keywords that some fact mentions.

    memstream eval-extraction [--config local] [--out bench/results/extraction_quality.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import anyio

from runtime.config import load_config
from runtime.errors import LLMOutputError
from runtime.llms import make_llm
from runtime.prompts import facts_schema, render_extraction
from runtime.reconcile import parse_facts

TURNS: list[tuple[str, list[str]]] = [
    ("I'm Alice, I moved to Berlin and I'm vegetarian", ["alice", "berlin", "vegetarian"]),
    ("Actually I moved to Paris last month", ["paris"]),
    ("My daughter Emma starts school in September", ["emma", "daughter", "school"]),
    ("I work as a data engineer at a bank", ["engineer", "bank"]),
    ("I'm allergic to peanuts, please remember that", ["peanut", "allerg"]),
    ("What's the weather like today?", []),
    ("I play the cello in a community orchestra on Tuesdays", ["cello", "orchestra"]),
    ("We adopted a beagle called Max", ["beagle", "max", "dog"]),
    ("I'm training for the Berlin marathon in October", ["marathon"]),
    ("I don't drink coffee anymore, only green tea", ["coffee", "tea"]),
    ("Thanks, that's all for now", []),
    ("My favourite author is Ursula K. Le Guin", ["le guin", "ursula", "author"]),
]


async def evaluate(config_name: str) -> dict:
    config = load_config(config_name)
    policy = config.memory
    llm = await make_llm(config.llm)
    rows, valid, correct, extracted, covered, expected_total = [], 0, 0, 0, 0, 0
    started = time.perf_counter()
    try:
        async def one(text: str, keywords: list[str]) -> dict:
            conversation = f"user: {text}"
            raw = await llm.complete_json(render_extraction(conversation),
                                          facts_schema(policy.max_facts, policy.max_fact_chars), name="facts")
            try:
                facts = parse_facts(raw, max_facts=policy.max_facts, max_chars=policy.max_fact_chars,
                                    conversation=conversation if policy.require_grounding else None)
                ok = True
            except LLMOutputError:
                facts, ok = [], False
            return {"turn": text, "raw": raw, "valid_json": ok, "facts": facts, "keywords": keywords}

        results: list[dict] = [{}] * len(TURNS)

        async def run(i: int) -> None:
            results[i] = await one(*TURNS[i])

        async with anyio.create_task_group() as tg:  # concurrent: vLLM batches them
            for i in range(len(TURNS)):
                tg.start_soon(run, i)
    finally:
        stats = llm.prefix_cache_stats() if hasattr(llm, "prefix_cache_stats") else {}
        await llm.close()
    for row in results:
        valid += row["valid_json"]
        good = [f for f in row["facts"] if not row["keywords"] or any(k in f.lower() for k in row["keywords"])]
        if not row["keywords"]:
            good = []  # nothing should be extracted from small talk
        row["correct_facts"] = len(good)
        correct += len(good)
        extracted += len(row["facts"])
        hits = sum(any(k in f.lower() for f in row["facts"]) for k in row["keywords"])
        covered += hits
        expected_total += len(row["keywords"])
        rows.append(row)
    return {
        "llm": {"provider": type(config.llm).__name__, "model": getattr(config.llm, "model", None)},
        "turns": len(rows),
        "json_valid_rate": valid / len(rows),
        "fact_precision": correct / extracted if extracted else None,
        "keyword_recall": covered / expected_total if expected_total else None,
        "facts_extracted": extracted,
        "seconds": round(time.perf_counter() - started, 1),
        "prefix_cache": stats,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="local")
    parser.add_argument("--out", default="bench/results/extraction_quality.json")
    args = parser.parse_args(argv)
    report = anyio.run(evaluate, args.config)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for row in report["rows"]:
        print(f"{row['turn'][:50]:50} valid={row['valid_json']} facts={row['facts']}")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
