from runtime.timings import StageTimes


def test_summaries_over_a_bounded_window():
    times = StageTimes(window=100)
    for i in range(1, 201):  # only the last 100 (101..200) stay
        times.record({"total": float(i), "embedding": 1.0})
    summary = times.summary()
    assert summary["total"] == {"count": 100, "mean": 150.5, "p50": 151.0, "p99": 200.0, "max": 200.0}
    assert summary["embedding"]["mean"] == 1.0
    times.clear()
    assert times.summary() == {}
