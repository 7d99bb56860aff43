"""The OpenAPI document of the REST API, generated from the route table and the msgspec types
the routes decode and answer with (``msgspec.json.schema_components``), like the WebSocket's
``protocol.schema.json``. The versioned copy is ``gateway/rest/openapi.json`` (regenerate with
``memstream openapi``); the server serves it at ``/openapi.json``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.rest.api import Route
from gateway.rest.errors import ErrorBody

API_VERSION = "1.0"
_REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{(\w+)}")
_STATUS_TEXT = {400: "The request is malformed; `field` names the part at fault",
                401: "No valid API key (`Authorization: Token <memstream token>`)",
                403: "The token does not allow this owner or right", 404: "No such memory, event or webhook",
                429: "Too many requests waiting; retry after `Retry-After` seconds",
                503: "A backend is unavailable or the server is shutting down; retry"}


def _reply_types(route: Route) -> tuple[Any, ...]:
    return route.reply if isinstance(route.reply, tuple) else (route.reply,)


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    types: list[Any] = [ErrorBody]
    for route in routes:
        types.extend(t for t in (route.body, route.query) if t is not None)
        types.extend(_reply_types(route))
    unique = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(unique, ref_template=_REF)
    schema_of = dict(zip(unique, schemas))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schema_of, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "memstream REST API (Mem0 Platform compatible)", "version": API_VERSION,
                 "description": "Mem0 Platform's endpoints, served by memstream on the gateway's port. "
                                "Authenticate with `Authorization: Token <memstream token>`; the tenant is "
                                "the token's, never the body's."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                                           "description": "`Token <memstream token>` (or `Bearer ...`)"}},
        },
    }


def _operation(route: Route, schema_of: dict[Any, Any], components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "tags": [route.tag]}
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 256}}
                  for name in _PATH_PARAM.findall(route.path)]
    if route.query is not None:
        parameters.extend(_query_parameters(schema_of[route.query], components))
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": schema_of[route.body]}}}
    replies = [schema_of[t] for t in _reply_types(route)]
    ok = replies[0] if len(replies) == 1 else {"oneOf": replies}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": ok}}}}
    error = {"content": {"application/json": {"schema": schema_of[ErrorBody]}}}
    for status in route.statuses if route.auth else (400,):
        responses[str(status)] = {"description": _STATUS_TEXT[status], **error}
    operation["responses"] = responses
    if route.auth:
        operation["security"] = [{"ApiKey": []}]
    return operation


def _query_parameters(ref: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = components[ref["$ref"].rsplit("/", 1)[1]]
    required = set(schema.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": _scalar(prop)}
            for name, prop in schema.get("properties", {}).items()]


def _scalar(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is one value: ``X | null`` becomes ``X`` (absent stands for null)."""
    options = prop.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            return {**{k: v for k, v in prop.items() if k not in ("anyOf", "default")}, **kept[0]}
    return {k: v for k, v in prop.items() if k != "default"}
