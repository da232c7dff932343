"""Driving stored orders through the saga: load, decide, store, emit, in one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from order_service.domain import Cancel, Confirm, Input, Ship, decide
from order_service.models import Order, TimelineEntry
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


def _count_outcome(session: AsyncSession, order: Order, outcome: str) -> None:
    """Counted once the transaction commits: a rolled-back decision never happened."""
    created = order.created_at

    async def count() -> None:
        SAGA_OUTCOMES.labels(outcome).inc()
        if created is not None:
            SAGA_DURATION.labels(outcome).observe((datetime.now(UTC) - created).total_seconds())

    after_commit(session, count)


def record(
    session: AsyncSession,
    order: Order,
    event: str,
    direction: str,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(TimelineEntry(order_id=order.id, event=event, direction=direction, details=details))


async def lock_order(
    session: AsyncSession, order_id: uuid.UUID, with_lines: bool = False
) -> Order | None:
    """The order, locked until the transaction ends: its inputs are applied one at a time.

    Its lines are loaded only when asked for: most inputs never read them."""
    query = (
        sa.select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if with_lines:
        query = query.options(selectinload(Order.lines))
    result = await session.execute(query)
    return result.scalar_one_or_none()


async def advance(session: AsyncSession, order: Order, saga_input: Input) -> None:
    """Apply one input to a locked order and emit what the saga decides.

    Raises TransitionRefused for a command the order's state does not allow."""
    saga, outputs = decide(order.saga(), saga_input)
    order.set_saga(saga)
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
            order.tracking_number = output.tracking_number
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
        record(session, order, event.event_type(), "emitted", details)
