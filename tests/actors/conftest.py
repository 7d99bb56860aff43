"""One Ray instance and one memstream actor runtime for the whole session (Ray takes seconds
to start here); each test uses owners of its own."""

from __future__ import annotations

import pytest
from aiohttp import web

from actors.client import ClusterMemory
from runtime.config import load_config
from scripts.fake_llm_server import make_app


@pytest.fixture(scope="session")
async def llm_server():
    runner = web.AppRunner(make_app(0.02))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    await runner.cleanup()


@pytest.fixture(scope="session")
async def cluster(tmp_path_factory, llm_server):
    config = load_config("test", environ={}, overrides={
        "data_dir": str(tmp_path_factory.mktemp("cluster")),
        "llm": {"provider": "openai", "base_url": llm_server},
        "ray": {"shards": 2, "restart_wait_s": 90},
        "memory": {"mailbox_capacity": 64},
    })
    memory = await ClusterMemory(config).open()
    yield memory
    await memory.cluster.stop()
