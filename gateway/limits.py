"""Per-connection admission: a token bucket for rate, a counter for requests in flight.

Pure and clock-injected, so the policy is tested without sockets or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; each request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> float:
        """0.0 if admitted, else how many seconds until a token is available."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class Admission:
    """Rate and in-flight limits of one connection, with a strike count for clients that
    keep pushing after being told to back off (closed with 1013 after ``max_strikes``)."""

    def __init__(self, *, rate: float, burst: int, max_in_flight: int, max_strikes: int = 100,
                 clock: Callable[[], float] = time.monotonic):
        self.bucket = TokenBucket(rate, burst, clock)
        self.max_in_flight = max_in_flight
        self.max_strikes = max_strikes
        self.in_flight = 0
        self.strikes = 0

    def admit(self) -> tuple[bool, float, str]:
        """(admitted, retry_after_s, reason)."""
        if self.in_flight >= self.max_in_flight:
            self.strikes += 1
            return False, 0.05, f"too many requests in flight on this connection (max {self.max_in_flight})"
        wait = self.bucket.take()
        if wait > 0:
            self.strikes += 1
            return False, round(wait, 3), f"rate limit of {self.bucket.rate:g} requests/s exceeded"
        self.strikes = 0
        self.in_flight += 1
        return True, 0.0, ""

    def done(self) -> None:
        self.in_flight -= 1

    @property
    def should_close(self) -> bool:
        return self.strikes >= self.max_strikes
