import anyio

from runtime.llms.counted import CountedLLM


class Slow:
    async def complete_json(self, messages, schema, *, name):
        await anyio.sleep(0.01)
        return "{}"

    async def close(self):
        return None


async def test_calls_and_peak_in_flight_are_counted():
    llm = CountedLLM(Slow())
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(lambda: llm.complete_json([], {}, name="facts"))
    assert llm.stats() == {"calls": 5, "peak_in_flight": 5} and llm.in_flight == 0
