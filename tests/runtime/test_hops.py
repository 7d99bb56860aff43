import anyio

from runtime import hops


def test_hops_land_in_the_open_trace_and_add_up():
    with hops.Trace() as trace:
        hops.add("model_ms", 2.0)
        hops.add("model_ms", 1.5)
        hops.merge({"shard_ms": 4.0, "model_ms": 0.5})
        with hops.span("search_ms"):
            pass
    assert trace["model_ms"] == 4.0 and trace["shard_ms"] == 4.0 and trace["search_ms"] >= 0
    hops.add("model_ms", 100.0)  # outside a trace: nothing, and no error
    assert trace["model_ms"] == 4.0 and not hops.active()


async def test_each_task_times_into_its_own_trace():
    traces = {}

    async def request(name: str, ms: float) -> None:
        with hops.Trace() as trace:
            await anyio.sleep(0)
            hops.add("hop_ms", ms)
        traces[name] = trace

    async with anyio.create_task_group() as tg:
        tg.start_soon(request, "a", 1.0)
        tg.start_soon(request, "b", 2.0)
    assert traces == {"a": {"hop_ms": 1.0}, "b": {"hop_ms": 2.0}}


def test_totals_keep_sums_counts_and_a_recent_median():
    totals = hops.HopTotals(window=3)
    for ms in (1.0, 2.0, 30.0, 4.0):
        totals.record("search", {"shard_ms": ms})
    totals.record("add", {"shard_ms": 7.0})
    assert totals.snapshot() == [("add", "shard_ms", 1, 7.0, 7.0), ("search", "shard_ms", 4, 37.0, 4.0)]
