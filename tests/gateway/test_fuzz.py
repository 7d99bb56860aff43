"""Property-based: random frames thrown at a live gateway never crash it, never produce an
internal error, and the connection (or a new one, after a legitimate close) keeps working.

``MEMSTREAM_FUZZ_FRAMES`` sets how many frames (CI default below; the nightly setting is 100000).
"""

from __future__ import annotations

import json
import os

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import LiveGateway, token
from tests.gateway.fuzzing import FuzzSession

FRAMES = int(os.environ.get("MEMSTREAM_FUZZ_FRAMES", "1500"))
TYPES = ["auth", "add", "search", "get", "get_all", "update", "delete", "delete_all", "history", "head",
         "subscribe", "unsubscribe", "ping", "teleport", ""]
FIELDS = ["id", "user_id", "agent_id", "run_id", "query", "messages", "memory_id", "data", "filters", "limit",
          "offset", "as_of", "metadata", "infer", "request_id", "after_seq", "tenant_wide", "subscription",
          "threshold", "fallback", "since_seq", "token", "tenant", "role", "content"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
filters = st.dictionaries(st.sampled_from(["AND", "OR", "NOT", "src", "$where", "user_id", "tenant", "k"]),
                          json_values | st.dictionaries(st.sampled_from(["eq", "ne", "in", "gt", "contains", "bad"]),
                                                        json_values, max_size=2), max_size=3)
frames = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={name: (filters if name in ("filters", "metadata") else json_values) for name in FIELDS},
)
wire = st.one_of(
    frames.map(lambda f: ("text", json.dumps(f))),
    frames.map(lambda f: ("binary", msgspec.msgpack.encode(f))),
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(max_size=200).map(lambda b: ("binary", b)),
)
def test_random_frames_never_break_the_server(threaded_gateway: LiveGateway):
    session = FuzzSession(threaded_gateway.url, token(rights=["read", "write", "subscribe", "admin"]))
    session.open()
    sent = {"frames": 0}

    @settings(max_examples=FRAMES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(wire)
    def one_frame(item: tuple[str, str | bytes]) -> None:
        kind, payload = item
        sent["frames"] += 1
        try:
            session.ws.send(payload, text=(kind == "text"))
            session.check_alive()
        except ConnectionClosed:
            # only invalid UTF-8 (1007) may close a connection here; anything else is a bug
            assert session.ws.close_code in (1007,), session.ws.close_code
            session.reconnects += 1
            session.open()

    one_frame()
    session.check_alive()
    session.close()
    assert sent["frames"] >= FRAMES * 0.9
    print(f"fuzz: {sent['frames']} frames, {session.reconnects} legitimate closes")
