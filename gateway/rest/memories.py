"""The memory endpoints mem0ai's ``MemoryClient`` calls (and their v1 / v2 forerunners), each
turned into the WebSocket protocol's frame and run by the same ``Dispatcher``: the tenant is
the token's, the owner is checked against the token, writes carry request ids.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway import protocol as p
from gateway.rest import paging, scopes
from gateway.rest import replies as r
from gateway.rest.api import Call, Route
from gateway.rest.bodies import AddBody, ListBody, PageQuery, ScopeQuery, SearchBody, UpdateBody
from gateway.rest.errors import FieldError
from runtime.errors import InvalidRequest
from runtime.filters import parse_filters
from runtime.messages import check_metadata, normalize_messages
from runtime.model import make_scope


def _owner(ids: dict[str, str]) -> str:
    return make_scope(**ids).owner


def _metadata_filter(expression: dict[str, Any] | None, field: str = "filters") -> dict[str, Any] | None:
    """Checked here so that a bad condition is answered naming the request's field."""
    try:
        parse_filters(expression)
    except InvalidRequest as exc:
        raise FieldError(field, str(exc)) from None
    return expression


async def _add(call: Call, *, wrapped: bool) -> Any:
    body: AddBody = call.body
    ids, extra = scopes.resolve(body.top_ids(), body.filters)
    if extra is not None:
        raise FieldError("filters", "an add's filters may only name user_id, agent_id and run_id")
    messages = body.messages if isinstance(body.messages, str) else [
        p.ChatMessage(role=m.role, content=m.content, name=m.name) for m in body.messages]
    for field, check, value in (("messages", normalize_messages, msgspec.to_builtins(messages)),
                                ("metadata", check_metadata, body.metadata)):
        try:  # here, so that a background add is refused now rather than failing later
            check(value)
        except InvalidRequest as exc:
            raise FieldError(field, str(exc)) from None
    owner = _owner(ids)
    call.grant.require("write", owner)
    frame = p.Add(id=call.frame_id(), messages=messages, metadata=body.metadata, infer=body.infer,
                  request_id=call.request_id(body.request_id), **ids)
    services = call.services
    run_async = services.config.gateway.rest.add_async if body.async_mode is None else body.async_mode
    if not run_async:
        await services.background.settled(call.tenant, owner)  # after the owner's earlier adds
        return msgspec.convert(await services.dispatcher.run(call.grant, frame), r.Changes)
    assert frame.request_id is not None
    status = services.background.submit(call.tenant, owner, frame.request_id,
                                        lambda: services.dispatcher.run(call.grant, frame))
    queued = r.Queued(event_id=status.id, status=status.status)  # type: ignore[arg-type]
    return r.QueuedList(results=[queued]) if wrapped else queued


async def add_v1(call: Call) -> Any:
    return await _add(call, wrapped=True)


async def add_v3(call: Call) -> Any:
    return await _add(call, wrapped=False)


async def search(call: Call) -> r.SearchResults:
    body: SearchBody = call.body
    ids, metadata = scopes.resolve(body.top_ids(), body.filters, metadata=body.metadata)
    await call.services.background.settled(call.tenant, _owner(ids))
    frame = p.Search(id=call.frame_id(), query=body.query, filters=_metadata_filter(metadata),
                     limit=body.top_k or body.limit, threshold=body.threshold, fallback=body.fallback,
                     mode=body.mode, **ids)
    return msgspec.convert(await call.services.dispatcher.run(call.grant, frame), r.SearchResults)


async def _page(call: Call, ids: dict[str, str], metadata: dict[str, Any] | None, page: int | None,
                page_size: int | None, as_of: int | str | None) -> r.MemoryPage:
    owner = _owner(ids)
    call.grant.require("read", owner)
    await call.services.background.settled(call.tenant, owner)
    page, size, limit, offset = paging.window(page, page_size)
    frame = p.GetAll(id=call.frame_id(), filters=_metadata_filter(metadata), limit=limit, offset=offset,
                     as_of=as_of, **ids)
    found = await call.services.dispatcher.run(call.grant, frame)
    count = await call.services.memory.count(**ids, filters=metadata, as_of=as_of, tenant=call.tenant)
    following, preceding = paging.links(call.url, page, size, count)
    return msgspec.convert({**found, "count": count, "next": following, "previous": preceding}, r.MemoryPage)


async def list_v1(call: Call) -> r.MemoryPage:
    query: ScopeQuery = call.query
    ids, _ = scopes.resolve(query.top_ids(), None, where="query")
    return await _page(call, ids, None, query.page, query.page_size, None)


async def list_v2(call: Call) -> r.MemoryPage:
    body: ListBody = call.body
    ids, metadata = scopes.resolve(body.top_ids(), body.filters)
    page = call.query.page or body.page
    return await _page(call, ids, metadata, page, call.query.page_size or body.page_size, body.as_of)


async def get(call: Call) -> r.MemoryOut:
    frame = p.Get(id=call.frame_id(), memory_id=call.params["memory_id"])
    return msgspec.convert(await call.services.dispatcher.run(call.grant, frame), r.MemoryOut)


async def update(call: Call) -> r.Updated:
    body: UpdateBody = call.body
    memory_id, dispatcher = call.params["memory_id"], call.services.dispatcher
    if body.text is None and body.metadata is None:
        raise FieldError("text", "send text, metadata or both")
    text = body.text
    if text is None:  # metadata only: the text stays as it is
        text = (await dispatcher.run(call.grant, p.Get(id=call.frame_id(), memory_id=memory_id)))["memory"]
    await dispatcher.run(call.grant, p.Update(id=call.frame_id(), memory_id=memory_id, data=text,
                                              metadata=body.metadata, request_id=call.request_id(body.request_id)))
    record = await dispatcher.run(call.grant, p.Get(id=call.frame_id(), memory_id=memory_id))
    return msgspec.convert({**record, "text": record["memory"], "message": "Memory updated successfully!"},
                           r.Updated)


async def delete(call: Call) -> r.Done:
    frame = p.Delete(id=call.frame_id(), memory_id=call.params["memory_id"], request_id=call.request_id(None))
    await call.services.dispatcher.run(call.grant, frame)
    return r.Done(message="Memory deleted successfully!")


async def delete_all(call: Call) -> r.Done:
    query: ScopeQuery = call.query
    ids, _ = scopes.resolve(query.top_ids(), None, where="query")
    await call.services.background.settled(call.tenant, _owner(ids))
    await call.services.dispatcher.run(call.grant, p.DeleteAll(id=call.frame_id(), **ids))
    return r.Done(message="Memories deleted successfully!")


async def history(call: Call) -> list[r.HistoryRow]:
    frame = p.History(id=call.frame_id(), memory_id=call.params["memory_id"])
    rows = await call.services.dispatcher.run(call.grant, frame)
    return msgspec.convert(rows, list[r.HistoryRow])


_BY_ID = "/v1/memories/{memory_id}/"
ROUTES = [
    Route("POST", "/v3/memories/add/", "add", "Add memories from messages (async by default: an event_id)",
          add_v3, (r.Queued, r.Changes), body=AddBody),
    Route("POST", "/v1/memories/", "add_v1", "Add memories (v1: the event wrapped in results)",
          add_v1, (r.QueuedList, r.Changes), body=AddBody),
    Route("POST", "/v3/memories/search/", "search", "Search one owner's memories by meaning", search,
          r.SearchResults, body=SearchBody),
    Route("POST", "/v2/memories/search/", "search_v2", "Search (v2 filters)", search, r.SearchResults,
          body=SearchBody),
    Route("POST", "/v1/memories/search/", "search_v1", "Search (v1: scope ids at the top level)", search,
          r.SearchResults, body=SearchBody),
    Route("POST", "/v3/memories/", "get_all", "One owner's memories, paged", list_v2, r.MemoryPage,
          body=ListBody, query=PageQuery),
    Route("POST", "/v2/memories/", "get_all_v2", "One owner's memories, paged (v2 filters)", list_v2,
          r.MemoryPage, body=ListBody, query=PageQuery),
    Route("GET", "/v1/memories/", "get_all_v1", "One owner's memories, paged (scope in the query)", list_v1,
          r.MemoryPage, query=ScopeQuery),
    Route("DELETE", "/v1/memories/", "delete_all", "Delete every memory of one owner (journaled)", delete_all,
          r.Done, query=ScopeQuery),
    Route("GET", _BY_ID, "get", "One memory by id", get, r.MemoryOut),
    Route("PUT", _BY_ID, "update", "Change a memory's text and/or metadata", update, r.Updated, body=UpdateBody),
    Route("DELETE", _BY_ID, "delete", "Delete one memory (journaled)", delete, r.Done),
    Route("GET", "/v1/memories/{memory_id}/history/", "history", "A memory's change log, from the journal",
          history, list[r.HistoryRow]),
]
