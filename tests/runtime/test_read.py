"""``count``: what ``get_all`` pages through, now and ``as_of`` a seq."""

from __future__ import annotations

from runtime.engine import AsyncMemory


async def test_count_matches_get_all_with_filters_and_as_of(memory: AsyncMemory):
    for i in range(5):
        await memory.add(f"Fact {i}", user_id="cat", metadata={"even": i % 2 == 0}, infer=False)
    await memory.add("Other owner", user_id="dog", infer=False)
    assert await memory.count(user_id="cat") == 5 == len((await memory.get_all(user_id="cat"))["results"])
    assert await memory.count(user_id="cat", filters={"even": True}) == 3
    assert await memory.count(user_id="cat", as_of=2) == 2
    first = (await memory.get_all(user_id="cat", limit=1))["results"][0]["id"]
    await memory.delete(first)
    assert await memory.count(user_id="cat") == 4 and await memory.count(user_id="cat", as_of=5) == 5
