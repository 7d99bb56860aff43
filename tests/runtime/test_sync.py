"""The blocking ``Memory`` is the async engine behind a portal: same results, same errors."""

import pytest

from runtime import InvalidRequest, Memory


def test_sync_memory_round_trip(config, embedder, llm):
    llm.push({"facts": ["Lives in Lisbon"]})
    with Memory(config, llm=llm, embedder=embedder) as memory:
        added = memory.add([{"role": "user", "content": "I moved to Lisbon"}], user_id="alice")
        memory_id = added["results"][0]["id"]
        assert memory.search("where does she live?", user_id="alice")["results"][0]["memory"] == "Lives in Lisbon"
        memory.update(memory_id, "Lives in Porto")
        assert [h["event"] for h in memory.history(memory_id)] == ["ADD", "UPDATE"]
        assert memory.get(memory_id)["memory"] == "Lives in Porto"
        with pytest.raises(InvalidRequest):
            memory.add("no scope", infer=False)
        assert memory.delete_all(user_id="alice")["deleted"] == 1
    assert Memory.add.__doc__ and "Remember" in Memory.add.__doc__
