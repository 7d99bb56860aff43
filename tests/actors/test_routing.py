from collections import Counter

from actors.routing import owner_key, pick, shard_names


def test_rendezvous_is_deterministic_balanced_and_moves_little():
    names = shard_names(4)
    keys = [owner_key("t", f"user:{i}") for i in range(4000)]
    placement = {k: pick(k, names) for k in keys}
    assert placement == {k: pick(k, list(reversed(names))) for k in keys}  # order of the list does not matter
    counts = Counter(placement.values())
    assert min(counts.values()) > 800  # ~1000 each
    grown = {k: pick(k, shard_names(5)) for k in keys}
    moved = [k for k in keys if grown[k] != placement[k]]
    assert all(grown[k] == "shard-4" for k in moved)  # only owners that go to the new shard move
    assert 500 < len(moved) < 1100
