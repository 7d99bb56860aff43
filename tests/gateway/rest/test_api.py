"""The Mem0-compatible REST API over a live gateway on the real engine: every endpoint mem0ai's
client calls, in its v1 / v2 / v3 shapes, with the WebSocket's auth rules and request ids."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.gateway.conftest import LiveGateway, token
from tests.gateway.rest.conftest import Rest


async def add(rest: Rest, text: str, user: str, **extra) -> dict:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False,
            "async_mode": False, **extra}
    return await rest.ok("POST", "/v3/memories/add/", json=body)


async def test_ping_names_the_tenant_as_the_project(rest: Rest):
    answer = await rest.ok("GET", "/v1/ping/")
    assert answer["status"] == "ok" and answer["project_id"] == "default" and answer["org_id"] == "memstream"
    assert "admin" in answer["rights"]
    for bad in (None, "nonsense", token(secret="another-secret-of-at-least-32-bytes!!")):
        status, body = await rest.as_(bad).call("GET", "/v1/ping/")
        assert status == 401 and body["code"] == "unauthenticated" and body["detail"]
    status, body = await rest.call("GET", "/v1/ping/", headers={"Authorization": "Basic abc"})
    assert status == 401 and "Token" in body["detail"]


async def test_async_add_answers_at_once_and_a_read_after_it_sees_it(rest: Rest, llm):
    llm.push({"facts": ["Likes green tea"]})
    queued = await rest.ok("POST", "/v3/memories/add/", json={
        "messages": [{"role": "user", "content": "I like green tea"}], "user_id": "ann", "metadata": {"k": 1}})
    assert queued["status"] in ("PENDING", "RUNNING", "SUCCEEDED") and queued["event_id"]
    found = await rest.ok("POST", "/v3/memories/search/", json={"query": "tea", "filters": {"user_id": "ann"}})
    assert [m["memory"] for m in found["results"]] == ["Likes green tea"]
    assert found["results"][0]["metadata"] == {"k": 1} and found["results"][0]["user_id"] == "ann"
    event = await rest.ok("GET", f"/v1/event/{queued['event_id']}/")
    assert event["status"] == "SUCCEEDED" and event["results"][0]["event"] == "ADD" and event["owner"] == "user:ann"
    v1 = await rest.ok("POST", "/v1/memories/", json={"messages": "I like rain", "user_id": "ann", "infer": False})
    assert v1["results"][0]["status"] in ("PENDING", "RUNNING", "SUCCEEDED")


async def test_a_retried_write_with_the_same_request_id_applies_once(rest: Rest, live: LiveGateway):
    first = await add(rest, "Lives in Oslo", "bo", request_id="req-1")
    again = await add(rest, "Lives in Oslo", "bo", request_id="req-1")
    assert again == first and first["results"][0]["event"] == "ADD"
    keyed = {"messages": "Has a cat", "user_id": "bo", "infer": False}
    for _ in range(2):  # the async path, keyed by the Idempotency-Key header
        await rest.ok("POST", "/v3/memories/add/", json=keyed, headers={"Idempotency-Key": "req-2"})
    page = await rest.ok("POST", "/v3/memories/", json={"filters": {"user_id": "bo"}})
    assert sorted(m["memory"] for m in page["results"]) == ["Has a cat", "Lives in Oslo"]
    assert await live.memory.head(user_id="bo") == 2
    memory_id = first["results"][0]["id"]
    for _ in range(2):
        await rest.ok("PUT", f"/v1/memories/{memory_id}/", json={"text": "Lives in Bergen", "request_id": "req-3"})
    assert [row["event"] for row in await rest.ok("GET", f"/v1/memories/{memory_id}/history/")] == ["ADD", "UPDATE"]


async def test_search_in_v1_v2_v3_shapes_with_metadata_filters(rest: Rest):
    await add(rest, "Plays chess", "cy", metadata={"topic": "games", "level": 3})
    await add(rest, "Plays tennis", "cy", metadata={"topic": "sport", "level": 1})
    v1 = await rest.ok("POST", "/v1/memories/search/", json={"query": "plays", "user_id": "cy",
                                                            "metadata": {"topic": "games"}})
    v2 = await rest.ok("POST", "/v2/memories/search/", json={"query": "plays", "filters": {
        "AND": [{"user_id": "cy"}, {"metadata": {"topic": "games"}}]}})
    v3 = await rest.ok("POST", "/v3/memories/search/", json={"query": "plays", "top_k": 5, "filters": {
        "user_id": "cy", "OR": [{"level": {"gte": 2}}, {"topic": "nope"}]}, "rerank": True})
    assert [m["memory"] for m in v1["results"]] == [m["memory"] for m in v2["results"]] == \
        [m["memory"] for m in v3["results"]] == ["Plays chess"]
    assert isinstance(v3["results"][0]["score"], float)
    for mode in ("dense", "sparse", "hybrid"):  # memstream's ranking choice, as over the WebSocket
        ranked = await rest.ok("POST", "/v3/memories/search/", json={"query": "tennis", "mode": mode,
                                                                     "filters": {"user_id": "cy"}})
        assert ranked["results"][0]["memory"] == "Plays tennis", mode
    status, refused = await rest.call("POST", "/v3/memories/search/", json={"query": "x", "mode": "fuzzy",
                                                                            "user_id": "cy"})
    assert status == 400 and refused["field"] == "mode", refused


async def test_get_all_pages_with_count_and_links(rest: Rest):
    for i in range(5):
        await add(rest, f"Fact number {i}", "di")
    first = await rest.ok("POST", "/v3/memories/", json={"filters": {"user_id": "di"}},
                          params={"page": 1, "page_size": 2})
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    assert "page=2" in first["next"] and "page_size=2" in first["next"]
    last = await rest.ok("POST", "/v3/memories/", json={"filters": {"user_id": "di"}, "page": 3, "page_size": 2})
    assert len(last["results"]) == 1 and last["next"] is None and "page=2" in last["previous"]
    v1 = await rest.ok("GET", "/v1/memories/", params={"user_id": "di", "page_size": 10})
    assert v1["count"] == 5 and len(v1["results"]) == 5
    as_of = await rest.ok("POST", "/v2/memories/", json={"filters": {"user_id": "di"}, "as_of": 2})
    assert as_of["count"] == 2 and len(as_of["results"]) == 2


async def test_get_update_history_delete_and_delete_all(rest: Rest):
    memory_id = (await add(rest, "Drives a red car", "ed", metadata={"a": 1}))["results"][0]["id"]
    got = await rest.ok("GET", f"/v1/memories/{memory_id}/")
    assert got["memory"] == "Drives a red car" and got["user_id"] == "ed" and got["metadata"] == {"a": 1}
    updated = await rest.ok("PUT", f"/v1/memories/{memory_id}/", json={"text": "Drives a blue car"})
    assert updated["text"] == updated["memory"] == "Drives a blue car" and updated["version"] == 2
    only_metadata = await rest.ok("PUT", f"/v1/memories/{memory_id}/", json={"metadata": {"a": 2}})
    assert only_metadata["memory"] == "Drives a blue car" and only_metadata["metadata"] == {"a": 2}
    history = await rest.ok("GET", f"/v1/memories/{memory_id}/history/")
    assert [(h["event"], h["new_memory"]) for h in history] == [
        ("ADD", "Drives a red car"), ("UPDATE", "Drives a blue car"), ("UPDATE", "Drives a blue car")]
    assert [h["seq"] for h in history] == [1, 2, 3] and history[1]["old_memory"] == "Drives a red car"
    assert (await rest.ok("DELETE", f"/v1/memories/{memory_id}/"))["message"] == "Memory deleted successfully!"
    status, body = await rest.call("GET", f"/v1/memories/{memory_id}/")
    assert status == 404 and body["code"] == "not_found"
    await add(rest, "Owns a boat", "ed")
    await rest.ok("DELETE", "/v1/memories/", params={"user_id": "ed"})
    assert (await rest.ok("GET", "/v1/memories/", params={"user_id": "ed"}))["count"] == 0


async def test_entities_listed_and_deleted_as_mem0_reset_does(rest: Rest):
    await add(rest, "Fact of fay", "fay")
    await rest.ok("POST", "/v3/memories/add/", json={"messages": "Agent note", "agent_id": "helper", "infer": False,
                                                     "async_mode": False})
    listed = await rest.ok("GET", "/v1/entities/")
    assert {(e["type"], e["name"], e["total_memories"]) for e in listed["results"]} == {
        ("user", "fay", 1), ("agent", "helper", 1)}
    for entity in listed["results"]:
        await rest.ok("DELETE", f"/v2/entities/{entity['type']}/{entity['name']}/")
    assert (await rest.ok("GET", "/v1/entities/"))["results"] == []
    status, body = await rest.call("DELETE", "/v2/entities/app/x/")
    assert status == 400 and body["field"] == "entity_type"


async def test_the_token_decides_tenant_owners_and_rights(rest: Rest):
    await add(rest, "Secret of gus", "gus")
    hal = rest.as_(token(["user:hal"]))
    status, body = await hal.call("POST", "/v3/memories/search/", json={"query": "secret", "filters": {"user_id": "gus"}})
    assert status == 403 and body["code"] == "forbidden"
    status, _ = await hal.call("POST", "/v3/memories/", json={"filters": {"user_id": "gus"}})
    assert status == 403
    other_tenant = rest.as_(token(tenant="other"))
    found = await other_tenant.ok("POST", "/v3/memories/search/", json={"query": "secret", "user_id": "gus",
                                                                        "tenant": "default"})
    assert found["results"] == []  # a ``tenant`` in the body is not a field: the token's tenant is used
    reader = rest.as_(token(rights=["read"]))
    status, body = await reader.call("POST", "/v3/memories/add/", json={"messages": "x", "user_id": "gus"})
    assert status == 403 and "write" in body["detail"]
    assert (await hal.ok("GET", "/v1/entities/"))["results"] == []  # only the owners the token covers


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "/v3/memories/add/", {"user_id": "x"}, "messages"),
    ("POST", "/v3/memories/add/", {"messages": [{"role": "user", "content": 1}], "user_id": "x"},
     "messages[0].content"),
    ("POST", "/v3/memories/add/", {"messages": [{"role": "robot", "content": "hi"}], "user_id": "x"}, "messages"),
    ("POST", "/v3/memories/add/", {"messages": "hi"}, "user_id"),
    ("POST", "/v3/memories/add/", {"messages": "hi", "app_id": "shop", "user_id": "x"}, "app_id"),
    ("POST", "/v3/memories/add/", {"messages": "hi", "user_id": "x", "infer": "yes"}, "infer"),
    ("POST", "/v3/memories/add/", {"messages": "hi", "user_id": "x", "metadata": {"k": "v" * 20000}}, "metadata"),
    ("POST", "/v3/memories/search/", {"query": "", "user_id": "x"}, "query"),
    ("POST", "/v3/memories/search/", {"query": "q", "user_id": "x", "top_k": 0}, "top_k"),
    ("POST", "/v3/memories/search/", {"query": "q", "filters": {"user_id": "x", "bad key": 1}}, "filters"),
    ("POST", "/v3/memories/", {"filters": {"user_id": "x", "created_at": {"gte": "2024-01-01"}}},
     "filters.created_at"),
    ("PUT", "/v1/memories/some-id/", {}, "text"),
    ("POST", "/api/v1/webhooks/projects/default/", {"url": "ftp://x", "name": "n"}, "url"),
])
async def test_malformed_requests_get_400_naming_the_field(rest: Rest, method, path, body, field):
    status, answer = await rest.call(method, path, json=body)
    assert status == 400 and answer["field"] == field and answer["code"] == "invalid_request", answer
    assert answer["detail"]


async def test_not_json_too_large_unknown_route_and_wrong_method(rest: Rest, live: LiveGateway):
    status, body = await rest.call("POST", "/v3/memories/add/", data=b"{not json",
                                   headers={"Content-Type": "application/json"})
    assert status == 400 and body["field"] == "body" and "JSON" in body["detail"]
    huge = b'{"messages": "' + b"x" * (live.gateway.settings.max_frame_bytes + 10) + b'", "user_id": "x"}'
    status, body = await rest.call("POST", "/v3/memories/add/", data=io.BytesIO(huge))
    assert status == 413 and body["code"] == "too_large"
    status, body = await rest.call("GET", "/v9/nothing/")
    assert status == 404 and body["code"] == "not_found"
    status, body = await rest.call("PATCH", "/v3/memories/add/")
    assert status == 405


async def test_openapi_document_is_served_and_the_committed_copy_is_current(rest: Rest, live: LiveGateway):
    from gateway.rest.openapi import openapi_document
    from gateway.web.app import rest_routes

    served = await rest.as_(None).ok("GET", "/openapi.json")
    assert served == json.loads(json.dumps(openapi_document(live.gateway.web.routes)))
    committed = Path(__file__).resolve().parents[3] / "gateway" / "rest" / "openapi.json"
    assert json.loads(committed.read_text()) == openapi_document(rest_routes()), \
        "regenerate with: memstream openapi > gateway/rest/openapi.json"
    assert "/v3/memories/add/" in served["paths"] and "ApiKey" in served["components"]["securitySchemes"]
