"""Per-stage latency of recent adds (extraction, decision, embedding, journal, store, total): what
an operator looks at first when turns get slow, and what the runtime benchmark reports."""

from __future__ import annotations

import time
from collections import deque
from typing import Any


class StageTimes:
    """A bounded window of the last ``window`` values per stage; summaries are computed on demand."""

    def __init__(self, window: int = 2048):
        self._window = window
        self._values: dict[str, deque[float]] = {}

    def record(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            values = self._values.get(stage)
            if values is None:
                values = self._values[stage] = deque(maxlen=self._window)
            values.append(ms)

    def clear(self) -> None:
        self._values.clear()

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{stage: {count, mean, p50, p99, max}}`` in milliseconds, over the window."""
        out: dict[str, dict[str, Any]] = {}
        for stage, values in sorted(self._values.items()):
            ordered = sorted(values)
            n = len(ordered)
            out[stage] = {"count": n, "mean": round(sum(ordered) / n, 2), "p50": round(ordered[n // 2], 2),
                          "p99": round(ordered[min(n - 1, (n * 99) // 100)], 2), "max": round(ordered[-1], 2)}
        return out


class Stopwatch:
    """The stages of one add, in milliseconds: a stage timed twice (embedding) adds up."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def lap(self, name: str, started: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000
