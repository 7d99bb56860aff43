"""schemathesis against the live REST API, from its own OpenAPI document: requests that fit the
schema and requests that break it (wrong types, missing fields, out-of-range values, wrong
methods, missing API keys). Never a 500; every refusal is a 4xx whose JSON body says why and, for a
malformed request, names the field; every answer matches the document. (schemathesis'
``negative_data_rejection`` is not asked for: like Mem0's platform, the API ignores fields and
query parameters it does not know, which that check counts as accepting a malformed request.)

Bounded: ``MEMSTREAM_SCHEMATHESIS_EXAMPLES`` examples per operation (25 by default; CI may raise it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from gateway.rest.openapi import openapi_document
from gateway.web.app import rest_routes
from runtime.config import load_config
from tests.gateway.conftest import _open_memory, gateway_config, serving_on, token
from tests.gateway.rest.conftest import ADMIN

EXAMPLES = int(os.environ.get("MEMSTREAM_SCHEMATHESIS_EXAMPLES", "25"))
SCHEMA = schemathesis.openapi.from_dict(openapi_document(rest_routes()))
API_KEY = token(rights=ADMIN)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, embedder) -> Iterator[str]:
    """One gateway for every operation (on its own thread: schemathesis calls with ``requests``)."""
    data = Path(tmp_path_factory.mktemp("schemathesis")) / "data"
    config = gateway_config(load_config("test", overrides={"data_dir": str(data)}, environ={}))
    with start_blocking_portal() as portal:
        memory = portal.call(_open_memory, config, embedder)
        try:
            with serving_on(portal, config, memory) as gateway:
                yield f"http://127.0.0.1:{gateway.port}"
        finally:
            portal.call(memory.close)


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_is_a_server_error_and_every_refusal_says_why(case, base_url: str):
    response = case.call(base_url=base_url, headers={"Authorization": f"Token {API_KEY}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if response.status_code >= 400:
        body = response.json()
        assert body["detail"] and body["code"], body
        if response.status_code == 400 and body["code"] == "invalid_request":
            assert body.get("field"), body  # a malformed request names the field at fault
