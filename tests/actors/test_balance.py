"""Replica choice: least in flight, round-robin ties, failed replicas sit out and are probed back."""

from actors.balance import LeastLoaded


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def take(balancer):
    choice = balancer.choose()
    assert not choice.probe
    balancer.started(choice.index)
    return choice.index


def test_ties_go_round_robin_and_the_least_loaded_wins():
    b = LeastLoaded(3)
    assert [take(b) for _ in range(3)] == [0, 1, 2]
    b.finished(1)
    assert take(b) == 1  # the only one with nothing in flight
    b.finished(0), b.finished(1), b.finished(2)
    assert {take(b) for _ in range(3)} == {0, 1, 2}


def test_a_failed_replica_gets_no_calls_then_one_probe():
    clock = Clock()
    b = LeastLoaded(2, cooldown_s=10, clock=clock)
    first = take(b)
    b.finished(first, failed=True)
    assert b.suspects() == [first]
    assert all(take(b) != first for _ in range(5))  # even while the other is busier
    clock.now = 11
    probe = b.choose()
    assert probe.index == first and probe.probe
    assert not b.choose().probe  # one probe at a time: the others go to the healthy replica
    b.probed(first, ok=False)
    assert b.suspects() == [first] and not b.choose().probe  # cooling down again
    clock.now = 22
    probe = b.choose()
    b.probed(probe.index, ok=True)
    assert b.suspects() == [] and b.stats[first].failures == 1


def test_all_suspect_still_tries_one():
    b = LeastLoaded(2, cooldown_s=100)
    for i in (take(b), take(b)):
        b.finished(i, failed=True)
    assert b.choose().index in (0, 1)
