"""The one map from domain errors to the error shape and its status."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared_core import errors as domain
from shared_runtime.errors import install_error_handlers


class OutOfStock(domain.Conflict):
    code = "out_of_stock"


CASES = [
    (domain.Invalid("Too many."), 422, "validation_error"),
    (domain.Unauthenticated("Who?"), 401, "unauthorized"),
    (domain.Forbidden("No."), 403, "forbidden"),
    (domain.NotFound("Gone."), 404, "not_found"),
    (domain.Conflict("Not now."), 409, "conflict"),
    (OutOfStock("Only 2 left.", {"available": 2}), 409, "out_of_stock"),
    (domain.NotFound("No such order.", code="order_not_found"), 404, "order_not_found"),
    (domain.Throttled("Slow down.", 30), 429, "too_many_requests"),
    (domain.Unavailable("Later."), 503, "service_unavailable"),
]


@pytest.mark.parametrize(("error", "status", "code"), CASES)
def test_a_domain_error_is_answered_in_the_shape_with_its_kinds_status(error, status, code):
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def refuse() -> None:
        raise error

    answer = TestClient(app).get("/")
    assert answer.status_code == status
    assert answer.json() == {
        "error": {"code": code, "message": error.message, "details": error.details}
    }
    if status == 429:
        assert answer.headers["Retry-After"] == "30"
        assert answer.json()["error"]["details"] == {"retryAfterSeconds": 30}
