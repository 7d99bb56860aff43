"""Run INSIDE the mem0ai environment (scripts/mem0_requirements.txt), by test_mem0_client.py: mem0ai's
own MemoryClient and AsyncMemoryClient against a memstream server, changed in nothing but
``host=``. Imports no memstream code. Prints one JSON document of what each call returned.

    python mem0_session.py http://127.0.0.1:PORT API_KEY RECEIVER_URL
"""

import asyncio
import json
import sys

from mem0 import AsyncMemoryClient, MemoryClient


def sync_session(host: str, api_key: str, receiver: str) -> dict:
    out: dict = {}
    client = MemoryClient(api_key=api_key, host=host)
    out["project_id"] = client.project_id
    hook = client.create_webhook(url=receiver, name="test hook", project_id=client.project_id,
                                 event_types=["memory_add", "memory_update", "memory_delete"])
    out["webhook"] = hook
    messages = [{"role": "user", "content": "I am Alice and I live in Berlin"},
                {"role": "assistant", "content": "Nice to meet you, Alice"}]
    out["add"] = client.add(messages, user_id="alice", metadata={"source": "mem0-client"})
    out["search"] = client.search("where does she live", filters={"user_id": "alice"})
    berlin = next(m for m in out["search"]["results"] if "Berlin" in m["memory"])
    out["update"] = client.update(berlin["id"], text="I live in Paris")
    out["get"] = client.get(berlin["id"])
    out["history"] = client.history(berlin["id"])
    out["get_all"] = client.get_all(filters={"user_id": "alice"}, page=1, page_size=10)
    out["users"] = client.users()
    out["webhooks"] = client.get_webhooks(project_id=client.project_id)
    out["update_webhook"] = client.update_webhook(hook["webhook_id"], name="renamed hook")
    out["delete"] = client.delete(berlin["id"])
    out["after_delete"] = client.get_all(filters={"user_id": "alice"})
    out["delete_all"] = client.delete_all(user_id="alice")
    return out


async def async_session(host: str, api_key: str) -> dict:
    out: dict = {}
    client = AsyncMemoryClient(api_key=api_key, host=host)
    async with client:
        out["add"] = await client.add("I am Bob and I play the cello", user_id="bob")
        out["search"] = await client.search("what instrument", filters={"user_id": "bob"})
        cello = next(m for m in out["search"]["results"] if "cello" in m["memory"])
        out["update"] = await client.update(cello["id"], text="I play the viola")
        out["history"] = await client.history(cello["id"])
        out["delete"] = await client.delete(cello["id"])
        out["get_all"] = await client.get_all(filters={"user_id": "bob"})
        out["reset"] = await client.reset()
        out["users_after_reset"] = await client.users()
    return out


def main() -> None:
    host, api_key, receiver = sys.argv[1:4]
    result = {"sync": sync_session(host, api_key, receiver), "async": asyncio.run(async_session(host, api_key))}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
