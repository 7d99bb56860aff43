"""``memstream serve`` as a user runs it: a process that prints where it listens and a
development token, serves clients, and stops gracefully on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.client import SyncMemoryClient


def test_serve_prints_a_token_serves_and_stops_on_sigterm(tmp_path: Path):
    env = {**os.environ, "MEMSTREAM_CONFIG": "test", "MEMSTREAM_LOG__LEVEL": "warning", "HF_HUB_OFFLINE": "1"}
    env.pop("MEMSTREAM_TOKEN_SECRET", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "serve", "--runtime", "local", "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=Path(__file__).resolve().parents[2])
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        url = token = None
        while time.monotonic() < deadline and not (url and token):
            line = process.stdout.readline()
            assert line, "serve exited early:\n" + "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on (ws://\S+)", line):
                url = match.group(1)
            if re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+\n", line):
                token = line.strip()
        assert url and token, "".join(lines)
        with SyncMemoryClient(url, token) as client:
            client.add("Served by the command line", user_id="cli", infer=False)
            assert client.search("command", user_id="cli")["results"][0]["memory"] == "Served by the command line"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "".join(lines) + process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
