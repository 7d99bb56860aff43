"""A counter that tasks can wait on: for tests that act at a point of progress (kill a process
after n adds, stop once every event has arrived) without polling the count with sleeps."""

from __future__ import annotations

import anyio


class Progress:
    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[float, anyio.Event]] = []

    def add(self, n: int = 1) -> None:
        """Count ``n`` more and wake every task waiting for a count now reached."""
        self.count += n
        for target, reached in self._waiters:
            if self.count >= target:
                reached.set()
        self._waiters = [(target, reached) for target, reached in self._waiters if not reached.is_set()]

    async def reached(self, target: float) -> None:
        """Return once the count is at least ``target``."""
        if self.count >= target:
            return
        reached = anyio.Event()
        self._waiters.append((target, reached))
        await reached.wait()
