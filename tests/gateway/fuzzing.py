"""A fuzzing connection shared by the protocol fuzz tests: re-opened after a legitimate close;
every frame it reads must decode as a server frame, must not be an internal error and, when a
canary is given, must not contain it (data of another owner or tenant)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import msgspec
from websockets.sync.client import connect

from gateway import protocol as p


class FuzzSession:
    def __init__(self, url: str, auth: str, canary: str | None = None):
        self.url, self.auth, self.canary = url, auth, canary
        self.ws: Any = None
        self.pings = self.reconnects = self.frames_read = 0
        self._stack: ExitStack | None = None
        self._decoder = msgspec.json.Decoder(p.ServerFrame)

    def open(self) -> None:
        self.close()
        self._stack = ExitStack()
        # no keepalive pings from this side: the session is never idle (``check_alive`` after every
        # frame), and websockets' keepalive thread draws each ping payload from the global ``random``
        # module, which Hypothesis reports (as a flaky failure) when it happens during a draw
        self.ws = self._stack.enter_context(connect(self.url, max_size=None, ping_interval=None))
        self.read()  # welcome
        self.ws.send(json.dumps({"type": "auth", "id": "auth", "token": self.auth}))
        self.drain_until("auth")

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def read(self) -> Any:
        raw = self.ws.recv(timeout=30)
        self.frames_read += 1
        if self.canary is not None:
            assert self.canary not in (raw if isinstance(raw, str) else raw.decode("utf-8", "replace")), raw
        frame = self._decoder.decode(raw)
        assert not (isinstance(frame, p.Error) and frame.code == "internal"), frame
        return frame

    def drain_until(self, frame_id: Any) -> None:
        while True:
            frame = self.read()
            if getattr(frame, "id", None) == frame_id and isinstance(frame, (p.Result, p.Error, p.Pong)):
                return

    def check_alive(self) -> None:
        self.pings += 1
        ping_id = f"ping-{self.pings}"
        self.ws.send(json.dumps({"type": "ping", "id": ping_id}))
        self.drain_until(ping_id)
