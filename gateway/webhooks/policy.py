"""How one owner's deliveries to one webhook move on: the cursor, the retries, the dead letter.

A *lane* is one (webhook, owner) pair. Its cursor ``delivered`` says that every event of the
owner up to that seq has been delivered (or was not wanted by the webhook's filter); the next
delivery is always the event after it, so an owner's events arrive in order and a restart
resumes exactly there. A failed delivery is retried after an exponential backoff with jitter;
after ``max_attempts`` failures of the same event the lane is *dead*: it stops at that event
(later events are not delivered past it, which would break the order) until an admin replays
it. Pure: no clock, no randomness of its own (both are arguments).
"""

from __future__ import annotations

import msgspec

from runtime.config import WebhooksConfig


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 8
    base_s: float = 1.0
    max_s: float = 300.0
    jitter: float = 0.5

    @classmethod
    def from_config(cls, settings: WebhooksConfig) -> RetryPolicy:
        return cls(max_attempts=settings.max_attempts, base_s=settings.backoff_base_s,
                   max_s=settings.backoff_max_s, jitter=settings.jitter)


def backoff_s(policy: RetryPolicy, attempt: int, draw: float) -> float:
    """The wait before retry number ``attempt`` (1, 2, ...): ``base * 2^(attempt-1)`` capped at
    ``max_s``, of which the ``jitter`` share is scaled by ``draw`` (uniform in [0, 1)), so that
    receivers coming back are not hit by every lane at once, and a wait is never zero."""
    ceiling = min(policy.max_s, policy.base_s * 2 ** max(0, attempt - 1))
    return ceiling * (1.0 - policy.jitter) + ceiling * policy.jitter * draw


class Lane(msgspec.Struct, frozen=True, kw_only=True):
    """One owner's deliveries to one webhook, as persisted."""

    webhook_id: str
    owner: str
    delivered: int = 0  # every event of the owner up to this seq is delivered or not wanted
    attempts: int = 0  # failed deliveries of the event after ``delivered``
    retry_at: float = 0.0  # not before this time (wall clock, seconds)
    dead: bool = False
    last_error: str | None = None
    dead_since: float | None = None


def advanced(lane: Lane, seq: int) -> Lane:
    """The event ``seq`` was delivered (a 2xx) or filtered out: the cursor moves past it and the
    failure count starts over. An old seq (a duplicate) changes nothing."""
    if seq <= lane.delivered:
        return lane
    return msgspec.structs.replace(lane, delivered=seq, attempts=0, retry_at=0.0, last_error=None)


def failed(lane: Lane, error: str, *, now: float, policy: RetryPolicy, draw: float) -> Lane:
    """The event after the cursor could not be delivered: retry later, or stop the lane."""
    attempts = lane.attempts + 1
    if attempts >= policy.max_attempts:
        return msgspec.structs.replace(lane, attempts=attempts, retry_at=0.0, dead=True, last_error=error,
                                       dead_since=now)
    return msgspec.structs.replace(lane, attempts=attempts, last_error=error,
                                   retry_at=now + backoff_s(policy, attempts, draw))


def replayed(lane: Lane) -> Lane:
    """An admin's replay: the lane starts again at the event it stopped at, with fresh attempts."""
    return msgspec.structs.replace(lane, dead=False, attempts=0, retry_at=0.0, dead_since=None)


def wait_s(lane: Lane, now: float) -> float:
    """How long until the lane may try again (0: now)."""
    return max(0.0, lane.retry_at - now)
