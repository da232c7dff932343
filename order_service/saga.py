"""One step of the order saga on a stored order: lock its row, let ``domain.decide`` say what
happens, store the new state, the timeline and the events, in the caller's transaction.

Every event and command about an order goes through here (five for every order: the hot
path), so it uses SQLAlchemy Core, not the ORM's unit of work: the lock reads the nine columns
the saga needs into a ``Held``; ``advance`` writes one UPDATE, the outbox rows and one
multi-row timeline insert."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.domain import Cancel, Confirm, Input, Saga, Ship, Status, decide
from order_service.models import ORDERS, TIMELINE
from shared_core.context import after_commit
from shared_events.events import OrderCancelled, OrderConfirmed, OrderShipped
from shared_events.store import add_event

SAGA_OUTCOMES = Counter(
    "saga_outcomes_total", "Orders reaching an outcome, by outcome.", ["outcome"]
)
SAGA_DURATION = Histogram(
    "saga_duration_seconds",
    "From the order's creation to its outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600),
)


@dataclass(frozen=True)
class Held:
    """What the saga reads of an order, from its row locked until the transaction ends."""

    id: uuid.UUID
    user_id: uuid.UUID
    user_email: str
    created_at: datetime
    saga: Saga


_HELD = (
    ORDERS.c.id,
    ORDERS.c.user_id,
    ORDERS.c.user_email,
    ORDERS.c.created_at,
    ORDERS.c.status,
    ORDERS.c.stock_status,
    ORDERS.c.payment_status,
    ORDERS.c.cancel_code,
    ORDERS.c.cancel_reason,
)


def _held(row: Any) -> Held:
    return Held(
        id=row.id,
        user_id=row.user_id,
        user_email=row.user_email,
        created_at=row.created_at,
        saga=Saga(
            status=Status(row.status),
            stock=row.stock_status,
            payment=row.payment_status,
            cancel_code=row.cancel_code,
            cancel_reason=row.cancel_reason,
        ),
    )


def _count_outcome(session: AsyncSession, order: Held, outcome: str) -> None:
    """Counted once the transaction commits: a rolled-back decision never happened."""
    created = order.created_at

    async def count() -> None:
        SAGA_OUTCOMES.labels(outcome).inc()
        SAGA_DURATION.labels(outcome).observe((datetime.now(UTC) - created).total_seconds())

    after_commit(session, count)


Entry = tuple[str, str, dict[str, Any] | None]  # a timeline step: event, direction, details


async def record(session: AsyncSession, order_id: uuid.UUID, *entries: Entry) -> None:
    """Append steps to the order's timeline, in this order."""
    await session.execute(
        TIMELINE.insert(),
        [
            {"order_id": order_id, "event": event, "direction": direction, "details": details}
            for event, direction, details in entries
        ],
    )


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> Held | None:
    """The order, locked until the transaction ends: its inputs are applied one at a time."""
    query = sa.select(*_HELD).where(ORDERS.c.id == order_id).with_for_update()
    row = (await session.execute(query)).first()
    return _held(row) if row is not None else None


async def lock_overdue(session: AsyncSession, limit: int) -> list[Held]:
    """Up to ``limit`` PENDING orders past their deadline, locked; those another replica holds
    are skipped (SKIP LOCKED)."""
    query = (
        sa.select(*_HELD)
        .where(ORDERS.c.status == Status.PENDING, ORDERS.c.deadline_at < sa.func.now())
        .order_by(ORDERS.c.deadline_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_held(row) for row in await session.execute(query)]


async def advance(session: AsyncSession, order: Held, saga_input: Input, cause: Entry) -> None:
    """Apply one input to a locked order, store its new state and emit what the saga decides.
    ``cause`` is the timeline step that brought the input.

    Raises TransitionRefused for a command the order's state does not allow."""
    saga, outputs = decide(order.saga, saga_input)
    values: dict[str, Any] = {
        "status": saga.status,
        "stock_status": saga.stock,
        "payment_status": saga.payment,
        "cancel_code": saga.cancel_code,
        "cancel_reason": saga.cancel_reason,
    }
    entries = [cause]
    for output in outputs:
        if isinstance(output, Confirm):
            event: Any = OrderConfirmed(
                order_id=order.id, user_id=order.user_id, user_email=order.user_email
            )
        elif isinstance(output, Cancel):
            event = OrderCancelled(
                order_id=order.id,
                user_id=order.user_id,
                user_email=order.user_email,
                reason=output.reason,
            )
        elif isinstance(output, Ship):
            values["tracking_number"] = output.tracking_number
            event = OrderShipped(
                order_id=order.id,
                tracking_number=output.tracking_number,
                user_id=order.user_id,
                user_email=order.user_email,
            )
        await add_event(session, event, correlation_id=order.id)
        _count_outcome(
            session,
            order,
            {Confirm: "confirmed", Cancel: "cancelled", Ship: "shipped"}[type(output)],
        )
        details = {"reason": output.reason} if isinstance(output, Cancel) else None
        if isinstance(output, Ship):
            details = {"trackingNumber": output.tracking_number}
        entries.append((event.event_type(), "emitted", details))
    if saga != order.saga or "tracking_number" in values:
        await session.execute(ORDERS.update().where(ORDERS.c.id == order.id).values(values))
    await record(session, order.id, *entries)
