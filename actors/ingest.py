"""Batch ingestion: conversations from JSONL or Parquet into memories, as a Ray Data job.

    memstream ingest conversations.jsonl [--tenant T] [--concurrency N]

Each input row is one turn: ``{"user_id"|"agent_id"|"run_id": ..., "messages": [...] | "content": "...",
"metadata": {...}, "id": "optional stable id"}``. The pipeline:

1. the driver validates rows (a malformed one is reported with its line number; the rest go on);
2. Ray Data extracts facts on a pool of actors that fan out to the shared extractor actor
   (vLLM batches them continuously) or to the HTTP LLM endpoint, then embeds all facts of a
   block on an actor pool that calls the shared, micro-batching embedder actor;
3. the driver feeds each owner's turns, in input order, to the owner's shard, many owners at
   once; reconciliation and the journal commit happen there.

Request ids derive from the row (its ``id``, else a hash of its content), so a re-run - after
a crash, or on purpose - adds nothing twice: already committed turns are counted as skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec
import ray
from tqdm import tqdm

from actors.client import ClusterMemory
from actors.models import with_threads
from actors.placement import find_replicas
from actors.remote import RemoteEmbedder, RemoteLLM
from actors.resources import embedder_in_actors, llm_in_extractor
from runtime.config import EmbedderConfig, MemoryPolicy, OpenAIConfig
from runtime.embedders import make_embedder
from runtime.errors import MemstreamError
from runtime.extraction import extract_facts
from runtime.llms.factory import make_http_llm
from runtime.messages import normalize_messages
from runtime.model import make_scope


class IngestSummary(msgspec.Struct):
    turns: int = 0
    committed: int = 0
    skipped: int = 0  # committed by an earlier run (same request id)
    added: int = 0
    updated: int = 0
    deleted: int = 0
    failures: list[dict[str, Any]] = []
    seconds: float = 0.0

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0


def _request_id(record: dict[str, Any]) -> str:
    if isinstance(record.get("id"), (str, int)) and str(record["id"]):
        return f"ingest:{record['id']}"
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
    return f"ingest:{digest}"


def validate(record: Any, line: int) -> dict[str, Any]:
    """One input row → a turn for the pipeline, or MemstreamError/ValueError with the reason."""
    if not isinstance(record, dict):
        raise ValueError("a row must be a JSON object")
    messages = record.get("messages", record.get("content"))
    if isinstance(messages, str) and messages.strip().startswith("["):
        messages = json.loads(messages)  # Parquet files often carry messages as a JSON string
    parsed = normalize_messages(messages)
    scope = make_scope(record.get("user_id"), record.get("agent_id"), record.get("run_id"))
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata must be an object")
    return {
        "line": line, "request_id": _request_id(record), "scope": json.dumps(scope.fields()),
        "owner": scope.owner, "messages": json.dumps([msgspec.to_builtins(m) for m in parsed]),
        "metadata": json.dumps(metadata),
    }


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded row or the decode error) for JSONL; (row number, row) for Parquet."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield number, row
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, exc


class ExtractFacts:
    """Ray Data actor-pool stage: fan a block's turns out to the shared extractor actor, or - when
    the shards call an HTTP LLM themselves (``ray.llm_calls``) - straight to that endpoint."""

    def __init__(self, namespace: str, policy: dict[str, Any], endpoint: dict[str, Any] | None = None):
        self._endpoint = msgspec.convert(endpoint, OpenAIConfig) if endpoint else None
        self._extractors = None if endpoint else find_replicas("extractor", namespace)
        self._policy = msgspec.convert(policy, MemoryPolicy)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        messages = [msgspec.json.decode(m) for m in batch["messages"]]
        results = anyio.run(self._extract_all, messages)
        batch["facts"] = [json.dumps(r) if isinstance(r, list) else "null" for r in results]
        batch["error"] = [str(r) if isinstance(r, Exception) else "" for r in results]
        return batch

    async def _extract_all(self, conversations: list[list[dict[str, Any]]]) -> list[Any]:
        results: list[Any] = [None] * len(conversations)
        # made per block: each block runs in an event loop of its own, and an HTTP session belongs to one
        llm = make_http_llm(self._endpoint) if self._endpoint else RemoteLLM(self._extractors)

        async def one(i: int) -> None:
            try:
                results[i] = await extract_facts(llm, normalize_messages(conversations[i]), self._policy)
            except MemstreamError as exc:
                results[i] = exc

        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(conversations)):
                    tg.start_soon(one, i)
        finally:
            await llm.close()
        return results


class EmbedFacts:
    """Ray Data actor-pool stage: every fact of a block in one call to the embedder actor - or, when
    the shards embed for themselves (``ray.embed_in: shard``), to this stage's own copy of the model."""

    def __init__(self, namespace: str, local_model: dict[str, Any] | None = None):
        if local_model is None:
            self._embedder: Any = RemoteEmbedder(find_replicas("embedder", namespace), dims=0)
        else:
            self._embedder = make_embedder(msgspec.convert(local_model, EmbedderConfig))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        per_row = [json.loads(f) or [] for f in batch["facts"]]
        flat = [fact for facts in per_row for fact in facts]
        vectors = anyio.run(self._embed, flat) if flat else []
        out, offset = [], 0
        for facts in per_row:
            out.append(json.dumps(vectors[offset:offset + len(facts)]))
            offset += len(facts)
        batch["vectors"] = out
        return batch

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return await self._embedder.embed(texts)


async def ingest(memory: ClusterMemory, path: Path, *, tenant: str | None = None, concurrency: int = 32,
                 progress: bool = True) -> IngestSummary:
    started = anyio.current_time()
    summary = IngestSummary()
    turns: list[dict[str, Any]] = []
    for line, record in read_rows(path):
        try:
            if isinstance(record, Exception):
                raise ValueError(f"not valid JSON: {record}")
            turns.append(validate(record, line))
        except (MemstreamError, ValueError, TypeError) as exc:
            summary.failures.append({"line": line, "reason": str(exc)})
    summary.turns = len(turns) + len(summary.failures)
    tenant = tenant or memory.config.tenant
    if turns:
        await _run_pipeline(memory, turns, tenant, concurrency, progress, summary)
    summary.failures.sort(key=lambda f: f["line"])
    summary.seconds = round(anyio.current_time() - started, 2)
    return summary


async def _run_pipeline(memory: ClusterMemory, turns: list[dict[str, Any]], tenant: str, concurrency: int,
                        progress: bool, summary: IngestSummary) -> None:
    namespace, config = memory.config.ray.namespace, memory.config
    # no embedder actors (ray.embed_in: shard): the embedding stage holds its own copy of the model
    local_model = (None if embedder_in_actors(config)
                   else msgspec.to_builtins(with_threads(config.embedder, config.ray.embedder_threads)))
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # an owner's turns stay in input order
    context.enable_progress_bars = progress
    dataset = (
        ray.data.from_items(turns)
        .map_batches(ExtractFacts, batch_size=16, concurrency=2, num_cpus=0,
                     fn_constructor_kwargs={"namespace": namespace,
                                            "policy": msgspec.to_builtins(memory.config.memory),
                                            "endpoint": None if llm_in_extractor(memory.config)
                                            else msgspec.to_builtins(memory.config.llm)})
        .map_batches(EmbedFacts, batch_size=64, concurrency=1, num_cpus=0,
                     fn_constructor_kwargs={"namespace": namespace, "local_model": local_model})
    )
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](concurrency * 4)
    bar = tqdm(total=len(turns), desc="ingest", unit="turn", disable=not progress)

    def produce() -> None:  # Ray Data iterates synchronously: run it in a thread, with backpressure
        try:
            for row in dataset.iter_rows():
                anyio.from_thread.run(send.send, row)
        finally:
            anyio.from_thread.run_sync(send.close)

    lanes: dict[str, anyio.abc.ObjectSendStream] = {}
    slots = anyio.Semaphore(concurrency)

    async def owner_lane(rows: anyio.abc.ObjectReceiveStream) -> None:
        async with rows:
            async for row in rows:
                async with slots:
                    await _commit_turn(memory, row, tenant, summary)
                bar.update(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, produce)
        async with receive:
            async for row in receive:
                lane = lanes.get(row["owner"])
                if lane is None:
                    lane_send, lane_receive = anyio.create_memory_object_stream[dict[str, Any]](1000)
                    lanes[row["owner"]] = lane = lane_send
                    tg.start_soon(owner_lane, lane_receive)
                await lane.send(row)
        for lane in lanes.values():
            await lane.aclose()
    bar.close()


async def _commit_turn(memory: ClusterMemory, row: dict[str, Any], tenant: str, summary: IngestSummary) -> None:
    if row.get("error"):
        summary.failures.append({"line": int(row["line"]), "reason": row["error"]})
        return
    scope = json.loads(row["scope"])
    try:
        outcome = await memory.router.call_owner(tenant, row["owner"], "ingest", {
            **scope, "tenant": tenant, "messages": json.loads(row["messages"]),
            "metadata": json.loads(row["metadata"]), "request_id": row["request_id"],
            "facts": json.loads(row["facts"]), "fact_vectors": json.loads(row["vectors"]),
        })
    except MemstreamError as exc:
        summary.failures.append({"line": int(row["line"]), "reason": f"{exc.code}: {exc}"})
        return
    if outcome["replayed"]:
        summary.skipped += 1
        return
    summary.committed += 1
    for change in outcome["result"]["results"]:
        if change["event"] == "ADD":
            summary.added += 1
        elif change["event"] == "UPDATE":
            summary.updated += 1
        elif change["event"] == "DELETE":
            summary.deleted += 1


