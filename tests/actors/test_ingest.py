"""Batch ingestion as a Ray Data job: per-owner order, line-numbered failures, resumable."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from actors.client import ClusterMemory
from actors.ingest import ingest


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


async def test_jsonl_ingestion_is_ordered_reports_bad_lines_and_resumes(cluster: ClusterMemory, tmp_path):
    rows = []
    for u in range(3):
        for t in range(3):
            rows.append({"user_id": f"ingest-{u}", "messages": [{"role": "user", "content":
                         f"I collect stamps from country {t} and I play game {t}"}], "metadata": {"t": t}})
    rows.insert(2, "{not json")
    rows.insert(5, {"messages": [{"role": "user", "content": "no scope here"}]})
    rows.append({"user_id": "ingest-9", "messages": [{"role": "robot", "content": "x"}]})
    path = tmp_path / "turns.jsonl"
    write_jsonl(path, rows)

    summary = await ingest(cluster, path, progress=False)
    assert summary.turns == 12 and summary.committed == 9 and summary.skipped == 0
    assert summary.added == 18  # two facts per turn from the stand-in LLM
    assert [f["line"] for f in summary.failures] == [3, 6, 12]
    assert "JSON" in summary.failures[0]["reason"] and "user_id" in summary.failures[1]["reason"]
    for u in range(3):
        log = await cluster.history(user_id=f"ingest-{u}")
        assert [e["seq"] for e in log] == list(range(1, 7))
        assert [e["new_memory"] for e in log[::2]] == [f"I collect stamps from country {t}" for t in range(3)]

    again = await ingest(cluster, path, progress=False)
    assert again.committed == 0 and again.skipped == 9 and again.added == 0
    assert await cluster.head(user_id="ingest-0") == 6  # nothing applied twice


async def test_parquet_ingestion(cluster: ClusterMemory, tmp_path):
    table = pa.table({
        "id": ["p1", "p2"], "user_id": ["parquet-user", "parquet-user"],
        "content": ["I live in Quito and I teach math", "I have two cats"],
    })
    path = tmp_path / "turns.parquet"
    pq.write_table(table, path)
    summary = await ingest(cluster, path, progress=False)
    assert summary.failures == [] and summary.committed == 2
    memories = {m["memory"] for m in (await cluster.get_all(user_id="parquet-user"))["results"]}
    assert memories == {"I live in Quito", "I teach math", "I have two cats"}
