"""``owners``: every owner of a tenant with its head seq (and live memory count), from the journal."""

from __future__ import annotations

from runtime.engine import AsyncMemory


async def test_owners_lists_heads_and_counts_per_tenant(memory: AsyncMemory):
    await memory.add("One", user_id="eli", infer=False)
    await memory.add("Two", user_id="eli", infer=False)
    await memory.add("Agent note", agent_id="bot", infer=False)
    await memory.add("Elsewhere", user_id="eli", infer=False, tenant="other")
    assert await memory.owners() == [{"owner": "agent:bot", "head": 1}, {"owner": "user:eli", "head": 2}]
    await memory.delete_all(user_id="eli")
    assert await memory.owners(counts=True) == [{"owner": "agent:bot", "head": 1, "memories": 1},
                                                {"owner": "user:eli", "head": 4, "memories": 0}]
    assert await memory.owners(tenant="other") == [{"owner": "user:eli", "head": 1}]
    assert await memory.owners(tenant="nobody") == []
