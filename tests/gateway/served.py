"""``memstream serve`` in a child process, as a user runs it: its URL and development token once
it listens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Served:
    """``memstream serve`` as a user runs it (``--runtime local`` unless told), on a free port.
    ``url``: its HTTP base; ``ws_url``: its WebSocket endpoint."""

    def __init__(self, data_dir: Path, settings: dict[str, str] | None = None, runtime: str = "local"):
        env = {**os.environ, "MEMSTREAM_CONFIG": "test", "MEMSTREAM_LOG__LEVEL": "warning",
               "MEMSTREAM_WEBHOOKS__POLL_S": "0.5", "MEMSTREAM_WEBHOOKS__BACKOFF_BASE_S": "0.2",
               "HF_HUB_OFFLINE": "1", **(settings or {})}
        env.pop("MEMSTREAM_TOKEN_SECRET", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "serve", "--runtime", runtime, "--port", "0", "--data-dir",
             str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        self.lines: list[str] = []
        self.url = self.ws_url = self.token = ""
        self._reader = threading.Thread(target=self._keep_reading, daemon=True)

    def wait_ready(self) -> None:
        while not (self.url and self.token):
            line = self.process.stdout.readline()
            assert line, "serve exited early:\n" + "".join(self.lines)
            self.lines.append(line)
            if match := re.search(r"listening on ws://(\S+)/ws", line):
                self.url = f"http://{match.group(1)}"
                self.ws_url = f"ws://{match.group(1)}/ws"
            if re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+\n", line):
                self.token = line.strip()
        self._reader.start()  # its pipe must never fill up

    def _keep_reading(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader.is_alive():
            self._reader.join(timeout=30)
        self.process.stdout.close()

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (a crash)."""
        self.process.kill()
        self.process.wait()
        self.stop()
