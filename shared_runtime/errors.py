"""One JSON error shape for every error: {"error": {"code", "message", "details"}}.

The one map from domain errors (``shared_core.errors``: what a rule refused, said without
HTTP) to statuses is here; so are the answers for validation errors, unknown routes, stores
that do not answer and database refusals. ``ApiError`` is for the HTTP edge itself (a
missing header, a media type), raised by routes only."""

from __future__ import annotations

from typing import Any

import redis.exceptions as redis
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared_core import errors as domain

log = structlog.get_logger(__name__)

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The one error shape, as documented in every service's OpenAPI schema."""

    error: ErrorDetail


# Declared on every route, so clients (and schema-driven tests) know the error answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Bad request",
        401: "Missing or invalid access token",
        403: "Not allowed for this user",
        404: "Not found",
        409: "Conflicts with the current state",
        413: "Body too large",
        415: "Unsupported media type",
        422: "Invalid input",
        429: "Too many requests",
        503: "A dependency is unavailable",
    }.items()
}


# The kind of a domain error gives its status (the nearest kind in its class's MRO).
DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.Invalid: 422,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Throttled: 429,
    domain.Unavailable: 503,
    domain.DomainError: 400,
}


def domain_status(error: domain.DomainError) -> int:
    return next(DOMAIN_STATUS[kind] for kind in type(error).__mro__ if kind in DOMAIN_STATUS)


class ApiError(Exception):
    """Raised by routes for what only HTTP knows (a header, a media type); answered in the one
    error shape. Rules raise ``shared_core.errors`` instead."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}},
        status_code=status_code,
        headers=headers,
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        details.append({"field": ".".join(loc) or None, "message": err.get("msg", "invalid")})
    return details


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, domain.DomainError)
    headers = None
    if isinstance(exc, domain.Throttled):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, domain.Unavailable):
        headers = {"Retry-After": "5"}
    return error_response(domain_status(exc), exc.code, exc.message, exc.details, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422, "validation_error", "The request is not valid.", _validation_details(exc)
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES_BY_STATUS.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("store_unavailable", path=request.url.path, error=repr(exc))
    return error_response(
        503,
        "service_unavailable",
        "A data store is unavailable. Try again shortly.",
        headers={"Retry-After": "5"},
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A constraint the checks before it did not foresee (a race between two writes): the
    # request conflicts with what is stored; nothing was written.
    log.warning("conflict_refused_by_database", path=request.url.path, error=type(exc).__name__)
    return error_response(409, "conflict", "The request conflicts with data already stored.")


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the validation let through (an odd character, a number
    # out of range): the client's input, so 422, and logged so the validation can be fixed.
    log.warning("input_refused_by_database", path=request.url.path, error=repr(exc)[:300])
    return error_response(
        422, "validation_error", "The request contains a value that cannot be stored."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(domain.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # A database or Redis that does not answer is a fault to retry, not a bug: 503.
    for store_error in (
        redis.ConnectionError,
        redis.TimeoutError,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        ConnectionError,
    ):
        app.add_exception_handler(store_error, _store_unavailable)
    app.add_exception_handler(sqlalchemy.exc.DataError, _data_error)
    app.add_exception_handler(sqlalchemy.exc.IntegrityError, _integrity_error)
    # Anything else is answered 500 by shared_runtime.observability.RequestContextMiddleware.
