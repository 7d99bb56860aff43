"""End-to-end memory quality: scripted conversations through ``AsyncMemory``, scored on what is stored.

Each conversation of scripts/data/eval_memory.yaml is one user (``eval-<id>``): every user turn
goes through ``add`` (``add_detailed``: the same call plus its stage timings), then ``get_all``
lists the user's memories. Scored per turn (rules in scripts/memory_scoring.py and
scripts/memory_matching.py): fact turns remembered after the turn and at the end of the
conversation, update turns resolved (old value gone, new one there), chit-chat turns that changed
something, and every stored memory checked for invented content. Also LLM calls per turn, turn
latency (p50/p95) and turns/s.

Runs on the configured LLM (the embedded vLLM + Qwen2.5-Coder-0.5B-Instruct by default) in a
fresh data directory that is removed afterwards, so results never mix with an older store. Parts
run one after the other (``tune``, then ``heldout``), each with ``--concurrency`` conversations at
once (vLLM batches concurrent requests). Writes ``bench/results/eval_memory.json`` and prints a table.

    memstream eval-memory [--config local] [--part tune|heldout|all] [--concurrency 4]
                          [--out bench/results/eval_memory.json] [--data-dir DIR] [--keep-data]
"""

from __future__ import annotations

import argparse
import contextvars
import datetime as dt
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import yaml

from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from runtime.errors import MemstreamError
from runtime.llms import LLM, make_llm
from runtime.llms.counted import CountedLLM
from scripts.machine import describe
from scripts.memory_dataset import PARTS, Conversation, Dataset, parse_dataset
from scripts.memory_scoring import ConversationScore, TurnRecord, breakdown, score_conversation, worst_failures

DEFAULT_DATASET = Path(__file__).resolve().parent / "data" / "eval_memory.yaml"
DEFAULT_OUT = "bench/results/eval_memory.json"
_TURN_CALLS: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("eval_memory_turn_calls", default=None)


def load_dataset(path: str | Path = DEFAULT_DATASET) -> Dataset:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SystemExit(f"eval-memory: {path} is not valid YAML: {exc}") from None
    return parse_dataset(data, source=str(path))


class TurnCountedLLM(CountedLLM):
    """``CountedLLM`` that also charges each call to the turn that made it. A turn runs in its
    conversation's task (the owner mailbox runs work in the caller's task, and tasks it spawns
    copy the context), so a context variable set around ``add`` catches its calls."""

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        turn = _TURN_CALLS.get()
        if turn is not None:
            turn[name] += 1
        return await super().complete_json(messages, schema, name=name)


async def _memories(memory: AsyncMemory, user_id: str) -> list[str]:
    found = await memory.get_all(user_id=user_id, limit=memory.config.memory.max_page_size)
    return [m["memory"] for m in found["results"]]


async def run_conversation(memory: AsyncMemory, conv: Conversation,
                           progress: Callable[[str], None]) -> list[TurnRecord]:
    user_id = f"eval-{conv.id}"
    records: list[TurnRecord] = []
    for index, turn in enumerate(conv.turns):
        calls: Counter = Counter()
        token = _TURN_CALLS.set(calls)
        started = time.perf_counter()
        events: list[dict[str, Any]] = []
        timings: dict[str, float] = {}
        error = None
        try:
            outcome = await memory.add_detailed(turn.say, user_id=user_id)
            events, timings = list(outcome.result.get("results", [])), dict(outcome.timings_ms)
        except MemstreamError as exc:  # an invalid LLM answer after retries, a backend down: scored as is
            error = f"{exc.code}: {exc}"
        finally:
            _TURN_CALLS.reset(token)
        latency_ms = (time.perf_counter() - started) * 1000
        memories = await _memories(memory, user_id)
        records.append(TurnRecord(events=events, memories=memories, latency_ms=latency_ms, llm_calls=dict(calls),
                                  timings_ms=timings, error=error))
        changes = "; ".join(f"{e.get('event')} {str(e.get('memory'))[:40]!r}" for e in events) or "-"
        progress(f"  {conv.id:>8} {index + 1:>2}/{len(conv.turns)} {turn.kind:<8} {latency_ms / 1000:5.1f}s "
                 f"calls={sum(calls.values())} {'ERROR ' + error[:60] if error else changes}")
    return records


async def evaluate(config: Config, dataset: Dataset, *, parts: Sequence[str] = PARTS, concurrency: int = 4,
                   config_name: str = "", llm: LLM | None = None, embedder: Any = None,
                   progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``parts`` of ``dataset`` on ``config`` (its data_dir should be fresh) and score them.
    ``llm``/``embedder``: injected (tests); otherwise built from the config and closed here."""
    own_llm = llm is None
    started = time.perf_counter()
    if llm is None:
        progress(f"starting the LLM ({type(config.llm).__name__} {getattr(config.llm, 'model', '')})...")
        llm = await make_llm(config.llm)
    counted = TurnCountedLLM(llm)
    startup_s = time.perf_counter() - started
    year = dt.datetime.now(dt.UTC).year
    allowed_numbers = {str(year - 1), str(year), str(year + 1)}
    report: dict[str, Any] = {
        "machine": describe(),
        "config": config_name,
        "llm": {"provider": type(config.llm).__name__, "model": getattr(config.llm, "model", None)},
        "dataset": {"conversations": len(dataset.conversations),
                    "turns": sum(len(c.turns) for c in dataset.conversations)},
        "settings": {"parts": list(parts), "concurrency": concurrency},
        "llm_startup_s": round(startup_s, 1),
        "parts": {},
    }
    scored: list[ConversationScore] = []
    turn_calls = 0
    try:
        async with AsyncMemory(config, llm=counted, embedder=embedder) as memory:
            for part in parts:
                convs = dataset.part(part)
                if not convs:
                    continue
                progress(f"[{part}] {len(convs)} conversations, {sum(len(c.turns) for c in convs)} turns, "
                         f"{concurrency} at once")
                results: list[list[TurnRecord]] = [[] for _ in convs]
                limiter = anyio.CapacityLimiter(max(1, concurrency))
                part_started = time.perf_counter()

                async def run(i: int, convs: list[Conversation] = convs, results: list = results,
                              limiter: anyio.CapacityLimiter = limiter) -> None:
                    async with limiter:
                        results[i] = await run_conversation(memory, convs[i], progress)

                async with anyio.create_task_group() as tg:
                    for i in range(len(convs)):
                        tg.start_soon(run, i)
                seconds = time.perf_counter() - part_started
                part_scores = [score_conversation(c, r, allowed_numbers=allowed_numbers)
                               for c, r in zip(convs, results)]
                scored.extend(part_scores)
                turns = sum(len(c.turns) for c in convs)
                turn_calls += sum(sum(r.llm_calls.values()) for rs in results for r in rs)
                report["parts"][part] = {"conversations": len(convs), "seconds": round(seconds, 1),
                                         "turns_per_s": round(turns / seconds, 3) if seconds else None,
                                         **breakdown(part_scores)}
    finally:
        stats = counted.stats()
        if own_llm:
            await llm.close()
    if len(report["parts"]) > 1:
        report["all"] = breakdown(scored)
    report["llm_calls"] = {**stats, "unattributed": stats["calls"] - turn_calls}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["failures"] = worst_failures(scored, 5)
    report["conversations"] = msgspec.to_builtins(scored)
    return report


# ---- output -------------------------------------------------------------------------------
def _cell(count: int, whole: int) -> str:
    return f"{100 * count / whole:3.0f}% {count:>2}/{whole:<2}" if whole else "     -     "


def _row(label: str, m: dict[str, Any]) -> str:
    p50 = m["latency_ms_p50"]
    p95 = m["latency_ms_p95"]
    return (f"{label:<13} {m['turns']:>5}  "
            f"{_cell(m['fact_turns_remembered_after'], m['fact_turns'])}  "
            f"{_cell(m['fact_turns_remembered_at_end'], m['fact_turns_checked_at_end'])}  "
            f"{_cell(m['update_turns_resolved_after'], m['update_turns'])}  "
            f"{_cell(m['update_turns_resolved_at_end'], m['update_turns'])}  "
            f"{_cell(m['chitchat_turns_that_changed'], m['chitchat_turns'])}  "
            f"{_cell(m['memories_invented'], m['memories_stored'])}  "
            f"{m['llm_calls_per_turn'] if m['llm_calls_per_turn'] is not None else '-':>5}  "
            f"{(p50 or 0) / 1000:5.1f}  {(p95 or 0) / 1000:5.1f}  {m['errors']:>3}")


def format_table(report: dict[str, Any]) -> str:
    header = (f"{'part / topic':<13} {'turns':>5}  {'facts@turn':^11}  {'facts@end':^11}  {'updates@turn':^11}  "
              f"{'updates@end':^11}  {'chat added':^11}  {'invented':^11}  {'calls':>5}  {'p50 s':>5}  "
              f"{'p95 s':>5}  {'err':>3}")
    lines = [header, "-" * len(header)]
    blocks = list(report["parts"].items())
    if "all" in report:
        blocks.append(("all", report["all"]))
    for name, block in blocks:
        speed = f", {block['turns_per_s']} turns/s" if "turns_per_s" in block else ""
        lines.append(_row(f"{name.upper()}", block["summary"]) + speed)
        for topic, m in block["by_topic"].items():
            lines.append(_row(f"  {topic}", m))
    return "\n".join(lines)


def format_failures(report: dict[str, Any], n: int = 5) -> str:
    lines = []
    for category, rows in report["failures"].items():
        lines.append(f"\n{category} (worst {min(n, len(rows))}):")
        for row in rows[:n]:
            if category == "invented":
                lines.append(f"  [{row['conversation']}] {row['memory']!r}: {', '.join(row['reasons'])}")
                continue
            stored = "; ".join(row["stored"]) or ("error: " + row["error"] if row["error"] else "nothing")
            lines.append(f"  [{row['conversation']} #{row['turn']}] {row['say']!r} -> {stored}")
    return "\n".join(lines)


def _shown_path(path: str | Path) -> str:
    """The dataset as the results show it: relative to the repository when it lies inside it, so
    committed results carry no machine's paths."""
    resolved = Path(path).resolve()
    root = DEFAULT_DATASET.parents[2]
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="local", help="YAML file or preset (local, test, ...)")
    parser.add_argument("--part", choices=["tune", "heldout", "all"], default="all")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--concurrency", type=int, default=4, help="conversations run at once")
    parser.add_argument("--data-dir", default=None,
                        help="where the fresh store of this run is made (a new temp dir inside it; default: /tmp)")
    parser.add_argument("--keep-data", action="store_true", help="keep the run's store afterwards")
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    dataset = load_dataset(args.dataset)
    if args.data_dir:
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="memstream-eval-memory-", dir=args.data_dir))
    parts = list(PARTS) if args.part == "all" else [args.part]
    try:
        config = load_config(args.config, overrides={"data_dir": str(workdir / "data")})
        report = anyio.run(lambda: evaluate(config, dataset, parts=parts, concurrency=args.concurrency,
                                            config_name=args.config,
                                            progress=lambda line: print(line, flush=True)))
    finally:
        if args.keep_data:
            print(f"store kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["dataset"]["path"] = _shown_path(args.dataset)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print()
    print(format_table(report))
    print(format_failures(report))
    print(f"\nwritten to {args.out} ({report['seconds']} s, LLM calls {report['llm_calls']['calls']})")


if __name__ == "__main__":
    main()
