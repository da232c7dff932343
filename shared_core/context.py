"""The context a piece of work runs in: the request id it serves, the trace it is part of
(W3C trace context, carried in HTTP and event headers), and what runs once its transaction has
committed."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import structlog
from opentelemetry import context, propagate, trace

AfterCommit = Callable[[], Awaitable[None]]


def current_request_id() -> str | None:
    """The request id of the request (or the event's) being handled, from the log context."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


def after_commit(session: Any, hook: AfterCommit) -> None:
    """Run ``hook`` once the session's transaction has committed (e.g. cache invalidation).

    Run by whoever commits at the edge: the request's session dependency, or the event
    consumer. ``session`` is an AsyncSession (anything with an ``info`` dict)."""
    session.info.setdefault("after_commit", []).append(hook)


async def run_after_commit(session: Any) -> None:
    for hook in session.info.pop("after_commit", []):
        await hook()


def drop_after_commit(session: Any) -> None:
    """The transaction rolled back: its hooks never run."""
    session.info.pop("after_commit", None)


def inject_trace(headers: MutableMapping[str, str]) -> bool:
    """Write the current span's context (``traceparent``) into ``headers``; False when there is
    none (tracing off, or outside any span)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return False
    propagate.inject(headers)
    return "traceparent" in headers


@contextlib.contextmanager
def continued_trace(headers: dict[str, Any]) -> Iterator[None]:
    """Run inside the trace context ``headers`` carry (e.g. those stored with an event in the
    outbox), so the spans made meanwhile continue that trace."""
    token = context.attach(propagate.extract({k: str(v) for k, v in headers.items()}))
    try:
        yield
    finally:
        context.detach(token)


def trace_ids() -> dict[str, str]:
    """The current trace and span ids, for a log line (empty outside a span)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": format(span_context.trace_id, "032x"),
        "span_id": format(span_context.span_id, "016x"),
    }
