"""The endpoints around the memories: the API-key check (``ping``), the entities (users, agents,
runs) that hold memories, deleting one (what ``MemoryClient.reset`` does for each), and the
status of a background add.
"""

from __future__ import annotations

import msgspec

from gateway import protocol as p
from gateway.rest import replies as r
from gateway.rest.api import ORGANIZATION, Call, Route
from gateway.rest.errors import FieldError
from runtime.errors import NotFound

ENTITY_TYPES = ("user", "agent", "run")


async def ping(call: Call) -> r.Ping:
    grant = call.grant
    return r.Ping(org_id=ORGANIZATION, project_id=grant.tenant, user_email=grant.subject or None, tenant=grant.tenant,
                  owners=sorted(grant.owners), rights=sorted(grant.rights))


async def entities(call: Call) -> r.Entities:
    """Every owner of the tenant that holds memories and that this token may read."""
    call.grant.require("read")
    owners = await call.services.memory.owners(tenant=call.tenant, counts=True)
    results = []
    for row in owners:
        owner = row["owner"]
        kind, _, name = owner.partition(":")
        if not row.get("memories") or not call.grant.allows_owner(owner) or kind not in ENTITY_TYPES:
            continue
        results.append(r.Entity(id=name, name=name, type=kind, total_memories=row["memories"],  # type: ignore[arg-type]
                                owner=owner, organization=ORGANIZATION, head=row["head"]))
    return r.Entities(results=results)


async def delete_entity(call: Call) -> r.Done:
    kind, name = call.params["entity_type"], call.params["entity_id"]
    if kind not in ENTITY_TYPES:
        raise FieldError("entity_type", f"must be one of {', '.join(ENTITY_TYPES)} (app is not supported)")
    ids = {f"{kind}_id": name}
    await call.services.background.settled(call.tenant, f"{kind}:{name}")
    await call.services.dispatcher.run(call.grant, p.DeleteAll(id=call.frame_id(), **ids))
    return r.Done(message="Entity deleted successfully.")


async def event(call: Call) -> r.AddEvent:
    status = call.services.background.status(call.tenant, call.params["event_id"])
    if status is None or not call.grant.allows_owner(status.owner):
        raise NotFound(f"no add event {call.params['event_id']!r} on this server (statuses are kept for the "
                       f"last {call.services.background.keep} adds)")
    return r.AddEvent(id=status.id, status=status.status, owner=status.owner,  # type: ignore[arg-type]
                      results=msgspec.convert(status.results, list[r.Change]), error=status.error,
                      created_at=status.created_at, updated_at=status.updated_at)


ROUTES = [
    Route("GET", "/v1/ping/", "ping", "Check the API key; names the tenant as the project", ping, r.Ping,
          tag="account"),
    Route("GET", "/v1/entities/", "entities", "Users, agents and runs that hold memories", entities, r.Entities,
          tag="account"),
    Route("DELETE", "/v2/entities/{entity_type}/{entity_id}/", "delete_entity",
          "Delete every memory of one user, agent or run", delete_entity, r.Done, tag="account"),
    Route("DELETE", "/v1/entities/{entity_type}/{entity_id}/", "delete_entity_v1",
          "Delete every memory of one user, agent or run (v1 path)", delete_entity, r.Done, tag="account"),
    Route("GET", "/v1/event/{event_id}/", "event", "How a background add went (PENDING ... SUCCEEDED / FAILED)",
          event, r.AddEvent, tag="account"),
]
