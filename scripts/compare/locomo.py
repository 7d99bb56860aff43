"""Retrieval quality in ``memstream bench``: recall@k of LOCOMO evidence turns.

Every turn of the first conversations of LOCOMO (CC BY-NC 4.0, read at run time, never
committed) is stored raw (``infer=False``, "Speaker: text", user = the conversation, the turn's
``dia_id`` in the metadata); each category 1-4 question is searched in its conversation, and
recall@k is the share of its evidence turns among the top k. mem0ai does the same in its driver
(``scripts/mem0_driver.py``, scenario ``locomo``)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from scripts.compare import ROOT
from scripts.compare.report import bars, fmt, latency_stats, ratio, times

LOCOMO = ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json"
_DIA = re.compile(r"D\d+:\d+")


def evidence_ids(evidence: list[Any]) -> list[str]:
    """LOCOMO evidence entries are dia ids, sometimes several in one string ("D8:6; D9:17")."""
    found: list[str] = []
    for item in evidence:
        for dia in _DIA.findall(str(item)):
            if dia not in found:
                found.append(dia)
    return found


def locomo_conversations(data: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` LOCOMO conversations: every turn as ``[dia_id, "Speaker: text"]`` (with the
    shared photo's caption when there is one) and the category 1-4 questions with their evidence."""
    out = []
    for sample in data[:limit]:
        conversation = sample["conversation"]
        sessions = sorted((k for k in conversation if re.fullmatch(r"session_\d+", k)),
                          key=lambda k: int(k.split("_")[1]))
        turns = []
        for key in sessions:
            for turn in conversation[key]:
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [shares a photo of {turn['blip_caption']}]"
                turns.append([turn["dia_id"], text])
        questions = [{"question": qa["question"], "evidence": evidence_ids(qa.get("evidence", []))}
                     for qa in sample["qa"] if qa.get("category") in (1, 2, 3, 4)]
        out.append({"id": f"locomo-{sample['sample_id']}", "turns": turns,
                    "questions": [q for q in questions if q["evidence"]]})
    return out


def load(path: Path, limit: int) -> list[dict[str, Any]]:
    """The conversations to run, none when LOCOMO is skipped (``limit`` 0) or not on this machine."""
    return locomo_conversations(json.loads(path.read_text()), limit) if limit and path.exists() else []


def recall_at_k(retrieved: list[list[str | None]], evidence: list[list[str]], ks: list[int]) -> dict[str, float]:
    """Mean over questions of the share of evidence turns among the top k retrieved."""
    scores = {}
    for k in ks:
        per_question = [len(set(ev) & set(got[:k])) / len(ev) for got, ev in zip(retrieved, evidence) if ev]
        scores[f"recall@{k}"] = round(sum(per_question) / len(per_question), 4) if per_question else float("nan")
    return scores


async def memstream(url: str, token: str, conversations: list[dict[str, Any]], k: int) -> dict:
    """Store every turn (eight lanes per conversation), then search each question: the retrieved
    ``dia_id`` in rank order, the store time and the search latencies."""
    import anyio
    from tqdm import tqdm

    from gateway.client import MemoryClient

    bar = tqdm(total=sum(len(c["turns"]) for c in conversations), desc="memstream: LOCOMO turns (infer=False)",
               unit="turn")
    started = time.perf_counter()

    async def store(conv: dict[str, Any]) -> None:
        pending = list(reversed(conv["turns"]))

        async def lane(client: MemoryClient) -> None:
            while pending:
                dia_id, text = pending.pop()
                await client.add(text, user_id=conv["id"], metadata={"dia_id": dia_id}, infer=False,
                                 request_id=f"{conv['id']}-{dia_id}")
                bar.update(1)

        async with MemoryClient(url, token) as client, anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(lane, client)

    async with anyio.create_task_group() as tg:
        for conv in conversations:
            tg.start_soon(store, conv)
    add_seconds = time.perf_counter() - started
    bar.close()
    retrieved, samples = [], []
    bar = tqdm(total=sum(len(c["questions"]) for c in conversations), desc="memstream: LOCOMO questions", unit="q")
    async with MemoryClient(url, token) as client:
        for conv in conversations:
            for question in conv["questions"]:
                t0 = time.perf_counter()
                hits = await client.search(question["question"], user_id=conv["id"], limit=k)
                samples.append((time.perf_counter() - t0) * 1000)
                retrieved.append([(h.get("metadata") or {}).get("dia_id") for h in hits["results"]])
                bar.update(1)
    bar.close()
    return {"retrieved": retrieved, "add_seconds": round(add_seconds, 1), "search_samples_ms": samples}


def summarise(locomo: dict[str, Any], conversations: list[dict[str, Any]], ks: list[int], source: Path) -> None:
    """Each system's raw answer (memstream's above, the mem0ai driver's) replaced by its recall@k,
    store time and search latency, in place, with what was run."""
    evidence = [q["evidence"] for c in conversations for q in c["questions"]]
    for system in ("memstream", "mem0"):
        if system in locomo:
            found = locomo[system]
            locomo[system] = {"recall": recall_at_k(found["retrieved"], evidence, ks),
                              "store_seconds": found["add_seconds"],
                              "search": latency_stats(found["search_samples_ms"])}
    locomo.update(conversations=len(conversations), questions=len(evidence),
                  turns=sum(len(c["turns"]) for c in conversations), source=os.path.relpath(source, ROOT))


def rows(results: dict[str, Any]) -> list[list[str]]:
    locomo = results.get("locomo") or {}
    if not locomo.get("memstream"):
        return []
    out = []
    for key in locomo["memstream"]["recall"]:
        a, b = locomo["memstream"]["recall"][key], (locomo.get("mem0") or {}).get("recall", {}).get(key)
        out.append([f"LOCOMO {key} ({locomo['questions']} questions, {locomo['conversations']} conversations)",
                    fmt(a), fmt(b), times(ratio(a, b))])
    return out


def plot(ax, results: dict[str, Any]) -> None:
    locomo = results.get("locomo") or {}
    if not locomo.get("memstream"):
        ax.set_visible(False)
        return
    keys = list(locomo["memstream"]["recall"])
    series = {"memstream": [locomo["memstream"]["recall"][k] for k in keys]}
    if locomo.get("mem0"):
        series["mem0ai"] = [locomo["mem0"]["recall"][k] for k in keys]
    bars(ax, keys, series, "recall of evidence turns")
    ax.set_ylim(0, 1)
    ax.set_title(f"LOCOMO retrieval, raw turns, {locomo['questions']} questions")


def notes(results: dict[str, Any]) -> list[str]:
    locomo = results.get("locomo") or {}
    if not locomo:
        return []
    return [
        f"LOCOMO (CC BY-NC 4.0, read at run time from {locomo.get('source')}): the first "
        f"{locomo['conversations']} of 10 conversations ({locomo['turns']} turns; `--locomo-conversations 10` "
        f"for all: mem0ai stored {locomo['turns'] / ((locomo.get('mem0') or {}).get('store_seconds') or 1e9):.0f}"
        " turns/s, one at a time, and searched at "
        f"{((locomo.get('mem0') or {}).get('search') or {}).get('p50_ms', '—')} ms p50); every turn "
        "stored raw (`infer=False`, 'Speaker: text', user = the conversation), each category 1-4 question "
        "searched in its conversation; recall@k = share of its evidence turns in the top k."]
