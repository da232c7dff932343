"""Schema-driven fuzzing (schemathesis) of every service's OpenAPI, directly and via the gateway.

For any generated input: no 5xx, and every answer (status, content type, body) matches the
service's own OpenAPI schema. `make test` runs a bounded number of examples per operation
(FUZZ_EXAMPLES, default 8); `make fuzz` runs many more.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import GATEWAY_PORT, service_url

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
SERVICES = {
    "user_service": 5001,
    "product_service": 5002,
    "cart_service": 5003,
    "order_service": 5004,
    "payment_service": 5005,
    "notification_service": 5006,
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(schema: Any, admin_token: str) -> int:
    """An administrator's token opens every operation; the checks are about the answers."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in ("/health", "/ready", "/metrics"):
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS)

        run()
        operations += 1
    return operations


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_service_answers_any_input_by_its_schema(stack: str, admin_token: str, service: str):
    schema = schemathesis.openapi.from_url(f"{service_url(SERVICES[service])}/openapi.json")
    assert fuzz(schema, admin_token) >= 1


@pytest.mark.parametrize("service", ["product_service", "order_service"])
def test_the_gateway_answers_any_input_by_the_schema(stack: str, admin_token: str, service: str):
    schema = schemathesis.openapi.from_url(f"{service_url(SERVICES[service])}/openapi.json")
    schema.config.update(base_url=f"http://127.0.0.1:{GATEWAY_PORT}/api/v1")
    assert fuzz(schema, admin_token) >= 1
