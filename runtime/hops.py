"""Where a request's time goes, hop by hop, across the processes it crosses.

Each process times the hops it sees (a Ray call's round trip, the wait in a batcher, the model
call, the vector search) into the request's trace, a dict carried by a context variable. A Ray
actor sends its trace back with its reply and the caller merges it into its own, so the gateway
ends up with every hop of the request in milliseconds. Only durations measured inside one
process are kept: the time spent between processes is a caller's round trip minus the callee's
total, which holds across machines whose clocks disagree.

The gateway adds each finished trace to ``TOTALS`` (cumulative sums and counts per operation and
hop, exported at ``/metrics``), so a benchmark reads the mean of every hop over a run as the
difference of two scrapes. Outside a trace, timing a hop does nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_current: ContextVar[dict[str, float] | None] = ContextVar("memstream_hops", default=None)


class Trace:
    """``with Trace() as hops:`` - the hops timed inside the block (and in what it awaits) land in ``hops``."""

    def __init__(self) -> None:
        self.hops: dict[str, float] = {}
        self._token: Any = None

    def __enter__(self) -> dict[str, float]:
        self._token = _current.set(self.hops)
        return self.hops

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


def add(hop: str, ms: float) -> None:
    """Add ``ms`` to ``hop`` of the current trace (a hop met twice adds up)."""
    hops = _current.get()
    if hops is not None:
        hops[hop] = hops.get(hop, 0.0) + ms


def merge(received: dict[str, float] | None) -> None:
    """Fold in the hops another process timed (from its reply)."""
    hops = _current.get()
    if hops is not None and received:
        for hop, ms in received.items():
            hops[hop] = hops.get(hop, 0.0) + ms


def active() -> bool:
    return _current.get() is not None


def since(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000


@contextmanager
def span(hop: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        add(hop, since(started))


class HopTotals:
    """Per operation and hop: the count and sum of milliseconds since start (only ever growing, like
    a Prometheus counter), and the last ``window`` values for a median."""

    def __init__(self, window: int = 1024):
        self._count: dict[tuple[str, str], int] = defaultdict(int)
        self._sum: dict[tuple[str, str], float] = defaultdict(float)
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._window = window

    def record(self, operation: str, hops: dict[str, float]) -> None:
        for hop, ms in hops.items():
            key = (operation, hop)
            self._count[key] += 1
            self._sum[key] += ms
            recent = self._recent.get(key)
            if recent is None:
                recent = self._recent[key] = deque(maxlen=self._window)
            recent.append(ms)

    def snapshot(self) -> list[tuple[str, str, int, float, float]]:
        """``(operation, hop, count, sum_ms, median_ms of the recent window)`` per hop."""
        rows = []
        for key, count in sorted(self._count.items()):
            recent = sorted(self._recent[key])
            rows.append((*key, count, self._sum[key], recent[len(recent) // 2]))
        return rows


TOTALS = HopTotals()  # this process's finished traces (the gateway's, in practice)
