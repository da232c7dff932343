"""The context a piece of work runs in: the request id it serves, and what runs once its
transaction has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

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
