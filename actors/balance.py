"""Choosing a model actor replica for each call: the pure policy, no Ray.

Least calls in flight wins (vLLM batches what it is given, so the replica with the shortest
queue answers soonest); ties go round-robin so idle replicas share the work. A replica whose
call failed because its process died is *suspect*: it gets no calls for ``cooldown_s``, then
one cheap probe (``probe``) must answer before it gets real calls again. So a dead or
restarting replica (a vLLM restart takes a minute) costs callers one failed attempt each
during the failure, not a wait for the restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec


class ReplicaStats(msgspec.Struct):
    calls: int = 0
    failures: int = 0
    in_flight: int = 0


class Choice(msgspec.Struct, frozen=True):
    index: int
    probe: bool  # the caller must probe this suspect replica before sending the call


class LeastLoaded:
    def __init__(self, size: int, *, cooldown_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        if size < 1:
            raise ValueError("at least one replica")
        self.stats = [ReplicaStats() for _ in range(size)]
        self._suspect_until: list[float | None] = [None] * size
        self._probing = [False] * size
        self._next = 0
        self._cooldown_s = cooldown_s
        self._clock = clock

    def __len__(self) -> int:
        return len(self.stats)

    def choose(self) -> Choice:
        """The replica for the next call. Suspects are skipped while any healthy replica exists."""
        size, now = len(self.stats), self._clock()
        healthy = [i for i in range(size) if self._suspect_until[i] is None]
        ready = [i for i in range(size) if self._suspect_until[i] is not None and not self._probing[i]
                 and self._suspect_until[i] <= now]  # type: ignore[operator]
        if ready:  # a cooled-down suspect: probe it (the call itself goes there only if the probe answers)
            index = ready[0]
            self._probing[index] = True
            return Choice(index, True)
        pool = healthy or list(range(size))  # all suspect: no better choice than trying one
        start = self._next
        index = min(pool, key=lambda i: (self.stats[i].in_flight, (i - start) % size))
        self._next = (index + 1) % size
        return Choice(index, False)

    def probed(self, index: int, ok: bool) -> None:
        self._probing[index] = False
        self._suspect_until[index] = None if ok else self._clock() + self._cooldown_s

    def started(self, index: int) -> None:
        self.stats[index].calls += 1
        self.stats[index].in_flight += 1

    def finished(self, index: int, *, failed: bool = False) -> None:
        self.stats[index].in_flight -= 1
        if failed:
            self.stats[index].failures += 1
            self._suspect_until[index] = self._clock() + self._cooldown_s
        else:
            self._suspect_until[index] = None

    def suspects(self) -> list[int]:
        return [i for i, until in enumerate(self._suspect_until) if until is not None]
