import anyio
import pytest

from runtime import hops
from runtime.batching import MicroBatcher, gather_more
from runtime.errors import Overloaded


async def test_items_from_many_callers_share_batches_and_get_their_own_results():
    calls: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        calls.append(items)
        return [2 * i for i in items]

    batcher = MicroBatcher(double, max_batch=8, max_wait_s=0.02)
    results: dict[int, list[int]] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)

        async def caller(i: int) -> None:
            results[i] = await batcher.submit([i, i + 100])

        async with anyio.create_task_group() as callers:
            for i in range(10):
                callers.start_soon(caller, i)
        tg.cancel_scope.cancel()
    assert results == {i: [2 * i, 2 * (i + 100)] for i in range(10)}
    assert sum(len(c) for c in calls) == 20 and max(len(c) for c in calls) <= 8
    assert batcher.stats.batches == len(calls) < 10 and batcher.stats.full_flushes >= 1


async def test_a_lone_item_goes_at_once_when_nothing_else_is_out():
    """An idle batcher does not hold a lone request for company: its wait applies only while
    other calls are out (a wait of an hour would otherwise hang this test)."""
    batcher = MicroBatcher(lambda items: _echo(items), max_batch=64, max_wait_s=3600)
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)
        with anyio.fail_after(30):  # a safety net for a hang
            assert await batcher.submit(["x"]) == ["x"]
        tg.cancel_scope.cancel()
    assert batcher.stats.idle_flushes == 1 and batcher.stats.timed_flushes == 0


@pytest.mark.parametrize(("pending", "in_flight", "wait_s", "expected"), [
    (1, 0, 0.01, False),   # idle: send now
    (1, 1, 0.01, True),    # a call is out: gather what arrives meanwhile
    (64, 1, 0.01, False),  # a full batch goes as soon as a slot is free
    (1, 1, 0.0, False),    # no wait configured
])
def test_gathering_only_while_other_calls_are_out(pending, in_flight, wait_s, expected):
    assert gather_more(pending, in_flight, 64, wait_s) is expected


async def test_a_named_batcher_times_the_wait_and_the_call_into_the_callers_trace():
    batcher = MicroBatcher(lambda items: _echo(items), max_batch=8, max_wait_s=0.0, name="model")
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)
        with hops.Trace() as trace:
            await batcher.submit(["x"])
        tg.cancel_scope.cancel()
    assert set(trace) == {"model_wait_ms", "model_call_ms"} and all(v >= 0 for v in trace.values())


async def _echo(items):
    return list(items)


async def test_a_failed_batch_fails_every_waiter_and_the_batcher_keeps_going():
    fail = True

    async def flaky(items):
        if fail:
            raise RuntimeError("model crashed")
        return items

    batcher = MicroBatcher(flaky, max_batch=4, max_wait_s=0.01)
    errors: list[BaseException] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)

        async def caller(i: int) -> None:
            try:
                await batcher.submit([i])
            except RuntimeError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as callers:
            for i in range(3):
                callers.start_soon(caller, i)
        fail = False
        assert await batcher.submit([7]) == [7]
        tg.cancel_scope.cancel()
    assert len(errors) == 3


async def test_wrong_result_count_is_an_error_and_a_full_queue_refuses():
    batcher = MicroBatcher(lambda items: _echo(items[:-1]), max_batch=4, max_wait_s=0.0, max_pending=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)
        with pytest.raises(RuntimeError, match="results for"):
            await batcher.submit([1, 2])
        with pytest.raises(Overloaded):
            await batcher.submit([1, 2, 3, 4])
        tg.cancel_scope.cancel()


async def test_max_in_flight_bounds_concurrent_calls():
    live, peak = 0, 0
    gate = anyio.Event()

    async def tracked(items):
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await gate.wait()  # held until the test has seen how many calls the bound let out
        live -= 1
        return items

    batcher = MicroBatcher(tracked, max_batch=1, max_wait_s=0.0, max_in_flight=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)
        async with anyio.create_task_group() as callers:
            for i in range(12):
                callers.start_soon(batcher.submit, [i])
            await anyio.wait_all_tasks_blocked()
            assert live == 3  # twelve waiting, three out
            gate.set()
        tg.cancel_scope.cancel()
    assert peak == 3 and batcher.stats.batches == 12


@pytest.mark.parametrize(("max_wait_s", "max_in_flight"), [
    (0.0, 1),   # the shard-side policy: no timer, one call out; what built up meanwhile is the next batch
    (3600, 2),  # a free slot and a long wait: held for company until the first call comes back
])
async def test_what_arrives_while_a_call_is_out_goes_together_in_the_next(max_wait_s, max_in_flight):
    gate, calls = anyio.Event(), []

    async def held(items):
        calls.append(list(items))
        if len(calls) == 1:
            await gate.wait()
        return items

    batcher = MicroBatcher(held, max_batch=64, max_wait_s=max_wait_s, max_in_flight=max_in_flight)
    results = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)

        async def caller(i: int) -> None:
            results[i] = await batcher.submit([i])

        tg.start_soon(caller, 0)
        await anyio.wait_all_tasks_blocked()  # the first call is out and held
        async with anyio.create_task_group() as callers:
            for i in range(1, 6):
                callers.start_soon(caller, i)
            await anyio.wait_all_tasks_blocked()
            assert calls == [[0]]  # nothing else went, although a second slot may be free
            gate.set()
        tg.cancel_scope.cancel()
    assert calls == [[0], [1, 2, 3, 4, 5]] and results == {i: [i] for i in range(6)}
    assert batcher.stats.idle_flushes == 1 and batcher.stats.timed_flushes == 1
