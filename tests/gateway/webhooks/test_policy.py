"""Cursor, retries and dead letters of one (webhook, owner) lane, without clocks or sockets."""

from __future__ import annotations

import random

import pytest

from gateway.webhooks.policy import Lane, RetryPolicy, advanced, backoff_s, failed, replayed, wait_s

POLICY = RetryPolicy(max_attempts=4, base_s=1.0, max_s=10.0, jitter=0.5)


def test_backoff_doubles_is_capped_and_its_jitter_stays_in_bounds():
    assert [backoff_s(POLICY, n, 1.0) for n in (1, 2, 3, 4, 5, 9)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [backoff_s(POLICY, n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    draws = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(10.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= backoff_s(POLICY, attempt, draws.random()) <= ceiling
    assert backoff_s(RetryPolicy(jitter=0.0), 3, 0.9) == 4.0


def test_the_cursor_moves_forward_only():
    lane = Lane(webhook_id="wh", owner="user:a")
    lane = advanced(advanced(lane, 1), 2)
    assert lane.delivered == 2
    assert advanced(lane, 2) is lane and advanced(lane, 1) is lane  # a duplicate changes nothing


def test_failures_back_off_then_dead_letter_at_the_failing_event_and_replay_resumes_there():
    lane = advanced(Lane(webhook_id="wh", owner="user:a"), 5)
    now = 1000.0
    for attempt in range(1, POLICY.max_attempts):
        lane = failed(lane, "HTTP 503", now=now, policy=POLICY, draw=1.0)
        assert not lane.dead and lane.attempts == attempt
        assert wait_s(lane, now) == pytest.approx(min(10.0, 2.0 ** (attempt - 1)))
        assert wait_s(lane, lane.retry_at) == 0.0
    lane = failed(lane, "connection refused", now=now, policy=POLICY, draw=1.0)
    assert lane.dead and lane.delivered == 5 and lane.last_error == "connection refused" and lane.dead_since == now
    revived = replayed(lane)
    assert not revived.dead and revived.attempts == 0 and revived.delivered == 5 and wait_s(revived, now) == 0.0
    assert advanced(failed(revived, "x", now=now, policy=POLICY, draw=0.0), 6).attempts == 0  # success resets
