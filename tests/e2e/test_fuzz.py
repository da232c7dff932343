"""Schema-driven fuzzing (schemathesis) of every service's OpenAPI, directly and via the gateway.

For any generated input: no 5xx, and every answer (status, content type, body) matches the
service's own OpenAPI schema. Besides what schemathesis generates, about half the cases have
one of their strings (in the body, the query or the path) salted with a control or invisible
character: NUL, BEL, ESC, DEL, a zero-width space, a no-break or ideographic space, a BOM, a
line separator. `make test` runs a bounded number of examples per operation (FUZZ_EXAMPLES,
default 8); `make fuzz` runs many more.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared_runtime.registry import SERVICES
from tests.e2e.conftest import GATEWAY_PORT, service_url

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
SALT = ["\x00", "\x07", "\x1b", "\x7f", "\u200b", "\u00a0", "\u3000", "\ufeff", "\u2028", "   "]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _strings(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where the strings are in a generated value (dicts and lists, nested)."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [found for key, item in items for found in _strings(item, (*path, key))]


def _salted(value: Any, where: tuple[Any, ...], grain: str, how: str) -> Any:
    if not where:
        return {"alone": grain, "before": grain + value, "inside": value[:1] + grain + value[1:]}[
            how
        ]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[where[0]] = _salted(value[where[0]], where[1:], grain, how)
    return copy


def salt(_: Any, value: Any) -> st.SearchStrategy[Any]:
    """The value as generated, or with one of its strings salted (a flatmap hook)."""
    places = _strings(value)
    if not places:
        return st.just(value)
    changed = st.builds(
        lambda where, grain, how: _salted(value, where, grain, how),
        st.sampled_from(places),
        st.sampled_from(SALT),
        st.sampled_from(["alone", "before", "inside"]),
    )
    return st.one_of(st.just(value), changed)


def fuzz(schema: Any, admin_token: str) -> int:
    """An administrator's token opens every operation; the checks are about the answers."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    for container in ("body", "query", "path_parameters"):
        schema.hook(f"flatmap_{container}")(salt)
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
    url = service_url(service)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.config.update(base_url=url)  # the schema's first server is the gateway's /api/v1
    assert fuzz(schema, admin_token) >= 1


@pytest.mark.parametrize("service", ["product_service", "order_service"])
def test_the_gateway_answers_any_input_by_the_schema(stack: str, admin_token: str, service: str):
    schema = schemathesis.openapi.from_url(f"{service_url(service)}/openapi.json")
    schema.config.update(base_url=f"http://127.0.0.1:{GATEWAY_PORT}/api/v1")
    assert fuzz(schema, admin_token) >= 1
