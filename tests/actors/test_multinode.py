"""The cluster preset on three Ray nodes of one machine (Ray's own cluster utilities) with PostgreSQL:
GPU placement by the resource policy, extractor replicas, and: remove a node, its owners go on."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import psycopg
import pytest

from tests.conftest import POSTGRES_DSN

ROOT = Path(__file__).resolve().parents[2]


def postgres_up() -> bool:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.mark.skipif(not postgres_up(), reason=f"PostgreSQL not reachable at {POSTGRES_DSN} (the shared journal)")
async def test_owners_continue_on_the_surviving_node(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(ROOT)
    with anyio.fail_after(600):
        done = await anyio.run_process(
            [sys.executable, str(ROOT / "tests" / "actors" / "multinode_check.py"), str(tmp_path), POSTGRES_DSN],
            env=env, cwd=ROOT, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    assert result["moved"]  # the removed worker hosted a shard: shards run on workers only
    assert all(node != result["worker"] for node in result["nodes_after"].values())
    assert all(seqs == [1, 2, 3, 4, 5, 6] for seqs in result["histories"].values()), result["histories"]
    # the cluster preset's replicas: every extractor replica took some of the turns
    assert len(result["extractor_calls"]) == 2 and all(calls > 0 for calls in result["extractor_calls"])
    # the resource policy on a node with (declared) GPUs: TP 2 gets 2 GPUs, by either executor backend
    placements = result["placements"]
    assert placements["mp"]["on_gpu_node"] and len(placements["mp"]["gpu_ids"]) == 2
    assert placements["mp"]["resources"].get("GPU") == 2 and placements["mp"]["placement_group"] is None
    assert placements["ray"]["on_gpu_node"] and placements["ray"]["placement_group"]
    assert "GPU" not in placements["ray"]["resources"]  # the GPUs are the bundles' (vLLM's workers)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {result['schema']} CASCADE")
