"""The OpenAPI schema, fuzzed (schemathesis, bounded): no generated input makes the API answer 5xx, and every
answer conforms to the status codes and bodies the schema publishes."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from serve_helpers import make_client

from causalprint.serving.model_server import ModelServer

EXAMPLES = 20  # per operation: bounded in count, and each call is in-process


def test_no_generated_input_gets_a_server_error(model_server: ModelServer) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_client(model_server).app)
    called: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        codes = called.setdefault(operation.label, [])

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            response = case.call()
            codes.append(response.status_code)
            case.validate_response(
                response, checks=(not_a_server_error, status_code_conformance, response_schema_conformance)
            )

        fuzz()
    assert {"POST /v1/attribute", "POST /v1/verify", "POST /v1/sources/{name}/enrol"} <= set(called)
    assert all(codes for codes in called.values())  # each operation was called
    assert not [c for codes in called.values() for c in codes if c >= 500]
