"""Retrieval quality in ``memstream bench``: recall@k of LOCOMO evidence turns.

Every turn of the first conversations of LOCOMO (CC BY-NC 4.0, read at run time, never
committed) is stored raw (``infer=False``, "Speaker: text", user = the conversation, the turn's
``dia_id`` in the metadata); each category 1-4 question is searched in its conversation, and
recall@k is the share of its evidence turns among the top k, overall and per question category.
memstream answers every question in each search mode (dense, sparse, hybrid; the order rotates
from question to question so that no mode is always the warm one); mem0ai does the same in its
driver (``scripts/mem0_driver.py``, scenario ``locomo``) with the search it has."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from scripts.compare import ROOT
from scripts.compare.report import bars, fmt, latency_stats, ratio, rotated, times

LOCOMO = ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json"
_DIA = re.compile(r"D\d+:\d+")
# LOCOMO's question categories (5, adversarial, has no evidence turns to find and is left out)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
MODES = ("dense", "sparse", "hybrid")
HYBRID_RECALL_TARGET = 0.60


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
        questions = [{"question": qa["question"], "evidence": evidence_ids(qa.get("evidence", [])),
                      "category": CATEGORIES[qa["category"]]}
                     for qa in sample["qa"] if qa.get("category") in CATEGORIES]
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


def scores(retrieved: list[list[str | None]], questions: list[dict[str, Any]], ks: list[int]) -> dict[str, Any]:
    """recall@k over all questions and per category."""
    by_category: dict[str, Any] = {}
    for category in CATEGORIES.values():
        picked = [i for i, q in enumerate(questions) if q.get("category") == category]
        if picked:
            by_category[category] = {"questions": len(picked), **recall_at_k(
                [retrieved[i] for i in picked], [questions[i]["evidence"] for i in picked], ks)}
    return {"recall": recall_at_k(retrieved, [q["evidence"] for q in questions], ks), "by_category": by_category}


async def memstream(url: str, token: str, conversations: list[dict[str, Any]], k: int,
                    modes: tuple[str, ...] = MODES) -> dict:
    """Store every turn (eight lanes per conversation), then search each question in each mode: per
    mode the retrieved ``dia_id`` in rank order and the search latencies; the store time."""
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
    found: dict[str, dict[str, list]] = {m: {"retrieved": [], "search_samples_ms": []} for m in modes}
    bar = tqdm(total=sum(len(c["questions"]) for c in conversations),
               desc=f"memstream: LOCOMO questions x {len(modes)} modes", unit="q")
    async with MemoryClient(url, token) as client:
        turn = 0
        for conv in conversations:
            for question in conv["questions"]:
                for mode in rotated(modes, turn):
                    t0 = time.perf_counter()
                    hits = await client.search(question["question"], user_id=conv["id"], limit=k, mode=mode)
                    found[mode]["search_samples_ms"].append((time.perf_counter() - t0) * 1000)
                    found[mode]["retrieved"].append([(h.get("metadata") or {}).get("dia_id") for h in hits["results"]])
                turn += 1
                bar.update(1)
    bar.close()
    return {"modes": found, "add_seconds": round(add_seconds, 1)}


def summarise(locomo: dict[str, Any], conversations: list[dict[str, Any]], ks: list[int], source: Path) -> None:
    """Each system's raw answer (memstream's above, the mem0ai driver's) replaced by its recall@k
    (overall and per category), store time and search latency, in place, with what was run."""
    questions = [q for c in conversations for q in c["questions"]]

    def measured(found: dict[str, Any]) -> dict[str, Any]:
        return {**scores(found["retrieved"], questions, ks), "search": latency_stats(found["search_samples_ms"])}

    if "memstream" in locomo:
        found = locomo["memstream"]
        locomo["memstream"] = {"store_seconds": found["add_seconds"],
                               "modes": {mode: measured(part) for mode, part in found["modes"].items()}}
    if "mem0" in locomo:
        found = locomo["mem0"]
        locomo["mem0"] = {**measured(found), "store_seconds": found["add_seconds"],
                          "keyword_search": found.get("keyword_search")}
    categories = {name: sum(q["category"] == name for q in questions) for name in CATEGORIES.values()}
    locomo.update(conversations=len(conversations), questions=len(questions), categories=categories,
                  turns=sum(len(c["turns"]) for c in conversations), source=os.path.relpath(source, ROOT))


def _modes(locomo: dict[str, Any]) -> dict[str, Any]:
    return (locomo.get("memstream") or {}).get("modes") or {}


def rows(results: dict[str, Any]) -> list[list[str]]:
    locomo = results.get("locomo") or {}
    modes, mem0 = _modes(locomo), locomo.get("mem0") or {}
    out = []
    for mode, found in modes.items():
        for key, a in found["recall"].items():
            b = (mem0.get("recall") or {}).get(key)
            out.append([f"LOCOMO {key}, memstream {mode} ({locomo['questions']} questions, "
                        f"{locomo['conversations']} conversations)", fmt(a), fmt(b), times(ratio(a, b))])
    if "hybrid" in modes:
        for category, found in modes["hybrid"]["by_category"].items():
            key = list(found)[-1]  # the largest k
            b = ((mem0.get("by_category") or {}).get(category) or {}).get(key)
            out.append([f"LOCOMO {key}, memstream hybrid, {category} ({found['questions']} questions)",
                        fmt(found[key]), fmt(b), times(ratio(found[key], b))])
    return out


def plot(ax, results: dict[str, Any]) -> None:
    locomo = results.get("locomo") or {}
    modes = _modes(locomo)
    if not modes:
        ax.set_visible(False)
        return
    keys = list(next(iter(modes.values()))["recall"])
    series = {f"memstream {mode}": [found["recall"][k] for k in keys] for mode, found in modes.items()}
    if locomo.get("mem0"):
        series["mem0ai"] = [locomo["mem0"]["recall"].get(k) for k in keys]
    bars(ax, keys, series, "recall of evidence turns", shades={"memstream dense": 0.35, "memstream sparse": 0.65})
    ax.set_ylim(0, 1)
    ax.set_title(f"LOCOMO retrieval, raw turns, {locomo['questions']} questions")


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Hybrid recall@10 at least 0.60, and above mem0ai's in the same run."""
    locomo = results.get("locomo") or {}
    hybrid = (_modes(locomo).get("hybrid") or {}).get("recall") or {}
    value, mem0 = hybrid.get("recall@10"), ((locomo.get("mem0") or {}).get("recall") or {}).get("recall@10")
    if value is None:
        return {}
    met = value >= HYBRID_RECALL_TARGET and (mem0 is None or value > mem0)
    return {"locomo_hybrid_recall_at_10": {
        "target": HYBRID_RECALL_TARGET, "value": value, "mem0": mem0, "met": met,
        "text": f"LOCOMO hybrid recall@10 at least {HYBRID_RECALL_TARGET:.2f} over {locomo['conversations']} "
                f"conversations and above mem0ai's ({fmt(mem0)})"}}


def notes(results: dict[str, Any]) -> list[str]:
    locomo = results.get("locomo") or {}
    if not locomo:
        return []
    mem0 = locomo.get("mem0") or {}
    return [
        f"LOCOMO (CC BY-NC 4.0, read at run time from {locomo.get('source')}): "
        f"{locomo['conversations']} of 10 conversations ({locomo['turns']} turns; mem0ai stored "
        f"{locomo['turns'] / (mem0.get('store_seconds') or 1e9):.0f} turns/s, one at a time, and searched at "
        f"{(mem0.get('search') or {}).get('p50_ms', '—')} ms p50); every turn stored raw (`infer=False`, "
        "'Speaker: text', user = the conversation), each category 1-4 question searched in its conversation; "
        "recall@k = share of its evidence turns in the top k. memstream answers each question in each mode "
        "(dense: MiniLM cosine; sparse: BM25 with the store's IDF; hybrid: both fused by RRF in the store).",
        "mem0ai runs its best configuration that works offline: semantic search. Its BM25 scoring needs "
        "fastembed's `Qdrant/bm25` files, fetched from a model hub at first use, and its entity boost spaCy's "
        "`en_core_web_sm`, downloaded at first use; neither can be fetched here (keyword search active in this "
        f"run: {mem0.get('keyword_search')})."]
