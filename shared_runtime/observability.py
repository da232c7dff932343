"""Per-request plumbing: the request id, one access log line, and Prometheus HTTP metrics."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_core.context import trace_ids
from shared_core.fields import control_character

REQUEST_ID_HEADER = "x-request-id"
# An incoming X-Request-ID is kept only if it is this; else a new one is made.
REQUEST_ID_PATTERN = r"[A-Za-z0-9._-]{1,128}"
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

log = structlog.get_logger("access")

# Probes and scrapes are frequent and uninteresting: counted, not logged.
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


class RequestContextMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead) around every request.

    Takes X-Request-ID from the caller or makes one, binds it to the log context, returns
    it in the response, logs one access line and records the metrics by route template
    (not raw path, so ids in URLs do not explode the label set).
    """

    def __init__(self, app: ASGIApp, service_name: str) -> None:
        self.app = app
        self.service_name = service_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        structlog.contextvars.clear_contextvars()
        refused = _control_character_in(scope)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            if refused is not None:
                # Bad input in the path or the query: refused for every route, before any
                # code (or the database, which cannot store NUL) sees it.
                await _send_json(send_with_id, 422, refused)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here, inside the request's log context (the line carries its request id),
            # and not raised further: the server would close the connection after the answer,
            # and the gateway's next request on that pooled connection would fail (a 502).
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            if response_started:
                raise  # half an answer is sent: only closing the connection can say so
            await _send_json(send_with_id, 500, _INTERNAL_ERROR)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service_name, method, route, str(status)).inc()
            # With tracing on, the request's trace id rides along as an exemplar: Grafana goes
            # from a slow bucket of the latency panel to that trace.
            ids = trace_ids()
            exemplar = {"trace_id": ids["trace_id"]} if ids else None
            HTTP_LATENCY.labels(self.service_name, method, route).observe(elapsed, exemplar)
            if scope["path"] not in _QUIET_PATHS:
                log.info(
                    "request",
                    method=method,
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()


_INTERNAL_ERROR = {
    "error": {
        "code": "internal_error",
        "message": "Something went wrong on our side.",
        "details": None,
    }
}


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    content = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def _control_character_in(scope: Scope) -> dict[str, Any] | None:
    """The error answer when the path or the query string holds a control character."""
    query = unquote_plus(scope.get("query_string", b"").decode(errors="replace"), errors="replace")
    for where, text in (("path", scope.get("path", "")), ("query", query)):
        char = control_character(text, frozenset())
        if char is not None:
            return {
                "error": {
                    "code": "validation_error",
                    "message": "The request is not valid.",
                    "details": [
                        {
                            "field": where,
                            "message": f"must not contain control characters (U+{ord(char):04X})",
                        }
                    ],
                }
            }
    return None


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            # The gateway's rule too (nginx/render.py): nothing that could forge a log line.
            if REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus's text format, or OpenMetrics (with exemplars) to a scraper that asks for it."""
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        body = openmetrics.generate_latest(REGISTRY)
        return Response(body, media_type=openmetrics.CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
