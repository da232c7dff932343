"""What the back office asks every service, through the gateway's
``/api/v1/services/<service>/admin/...`` (administrators only):

- ``GET /admin/status``: the service's readiness checks, its queue (messages waiting,
  consumers) and its parked messages (how many, and the first ``limit`` with their errors,
  personal fields masked);
- ``POST /admin/parked/replay``: parked messages back onto its queue (one by ``messageId``, or
  all), as ``make dlq-replay`` does.

A service that consumes no events (user_service) has no queue: ``queue`` is null."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import Field

from shared_events.events import CamelModel
from shared_events.parking import (
    UnknownService,
    inspect,
    replay_parked,
)
from shared_runtime.auth import AdminUser
from shared_runtime.errors import ApiError
from shared_runtime.health import readiness
from shared_runtime.logs import redact

router = APIRouter(prefix="/admin", tags=["back office"])


class Parked(CamelModel):
    message_id: str | None
    event_type: str | None
    correlation_id: str | None
    attempts: int
    error: str
    failed_at: str
    body: str


class QueueOut(CamelModel):
    name: str
    messages: int
    consumers: int
    parked: int


class ServiceStatus(CamelModel):
    service: str
    ready: bool
    checks: dict[str, str]
    queue: QueueOut | None
    parked: list[Parked]


class ReplayRequest(CamelModel):
    message_id: str | None = Field(default=None, max_length=200)


class ReplayOut(CamelModel):
    moved: int
    remaining: int


def _masked(parked: Parked) -> Parked:
    """What a back-office user may read of a parked message: its personal fields and any
    secret masked, as in the logs (a replay sends the message as it is)."""
    try:
        body = json.dumps(redact(json.loads(parked.body)))
    except ValueError:
        body = redact(parked.body)
    return parked.model_copy(update={"body": body, "error": redact(parked.error)})


def _consumes(request: Request) -> bool:
    return getattr(request.app.state, "consumer", None) is not None


@router.post("/parked/replay", response_model=ReplayOut)
async def replay(request: Request, _: AdminUser, body: ReplayRequest | None = None) -> ReplayOut:
    """Parked messages back onto the service's queue with a fresh attempt count: the one
    ``messageId`` names, or all of them. ``moved`` 0 with a ``messageId``: no such message
    is parked (any more)."""
    settings = request.app.state.settings
    if not _consumes(request):
        raise ApiError(404, "no_queue", f"{settings.service_name} consumes no events.")
    message_id = body.message_id if body else None
    try:
        done = await replay_parked(
            settings.amqp_url, settings.service_name, limit=1 if message_id else None,
            message_id=message_id,
        )  # fmt: skip
    except UnknownService as exc:
        raise ApiError(503, "queue_unavailable", str(exc)) from exc
    return ReplayOut(moved=done.moved, remaining=done.remaining)


@router.get("/status", response_model=ServiceStatus)
async def status(
    request: Request, _: AdminUser, limit: Annotated[int, Query(ge=0, le=100)] = 20
) -> ServiceStatus:
    settings = request.app.state.settings
    checks = await readiness(request.app)
    queue, parked = None, []
    if _consumes(request):
        try:
            state, found = await inspect(settings.amqp_url, settings.service_name, limit)
        except UnknownService as exc:
            raise ApiError(503, "queue_unavailable", str(exc)) from exc
        queue = QueueOut(name=settings.service_name, **state)
        parked = [_masked(Parked.model_validate(p, from_attributes=True)) for p in found]
    return ServiceStatus(
        service=settings.service_name,
        ready=all(state == "ok" for state in checks.values()),
        checks=checks,
        queue=queue,
        parked=parked,
    )
