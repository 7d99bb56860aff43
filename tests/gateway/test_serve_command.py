"""``memstream serve`` as a user runs it: a process that prints where it listens and a
development token, serves clients, and stops gracefully on SIGTERM."""

from __future__ import annotations

from pathlib import Path

from gateway.client import SyncMemoryClient
from tests.gateway.served import Served


def test_serve_prints_a_token_serves_and_stops_on_sigterm(tmp_path: Path):
    served = Served(tmp_path / "data")
    try:
        served.wait_ready()
        with SyncMemoryClient(served.ws_url, served.token) as client:
            client.add("Served by the command line", user_id="cli", infer=False)
            assert client.search("command", user_id="cli")["results"][0]["memory"] == "Served by the command line"
        served.process.terminate()
        assert served.process.wait(timeout=60) == 0, "".join(served.lines)
    finally:
        served.stop()
