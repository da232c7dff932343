"""Event consumers of order_service: each reported fact moves the order's saga."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.domain import (
    Input,
    PaymentWasAuthorised,
    PaymentWasDeclined,
    StockWasReserved,
    StockWasShort,
    out_of_stock_reason,
    payment_declined_reason,
)
from order_service.models import Order
from order_service.saga import advance, lock_order, record
from shared_events.consumer import EventContext, Handler
from shared_events.events import (
    Event,
    PaymentProcessed,
    StockReservationFailed,
    StockReserved,
    UserDeleted,
)
from shared_events.store import ERASED_EMAIL, erase_from_outbox, record_erasure

log = structlog.get_logger(__name__)


class UnknownOrder(Exception):
    """An event about an order this service does not have (yet): retried, then parked."""


async def _apply(
    session: AsyncSession, event: Any, saga_input: Input, details: dict[str, Any] | None = None
) -> None:
    order = await lock_order(session, event.order_id)
    if order is None:
        raise UnknownOrder(f"order {event.order_id} not found")
    record(session, order, event.event_type(), "received", details)
    await advance(session, order, saga_input)


async def on_stock_reserved(session: AsyncSession, event: StockReserved, _: EventContext) -> None:
    await _apply(session, event, StockWasReserved())


async def on_stock_reservation_failed(
    session: AsyncSession, event: StockReservationFailed, _: EventContext
) -> None:
    order = await lock_order(session, event.order_id, with_lines=True)
    names = {line.product_id: line.name for line in order.lines} if order else {}
    short = [
        (names.get(item.product_id, str(item.product_id)), item.quantity, item.available)
        for item in event.items
    ]
    reason = out_of_stock_reason(short) if short else event.reason
    await _apply(session, event, StockWasShort(reason), {"reason": reason})


async def on_payment_processed(
    session: AsyncSession, event: PaymentProcessed, _: EventContext
) -> None:
    if event.success:
        await _apply(session, event, PaymentWasAuthorised(), {"success": True})
        return
    reason = payment_declined_reason(event.decline_code, event.reason)
    details = {"success": False, "declineCode": event.decline_code, "reason": reason}
    await _apply(session, event, PaymentWasDeclined(reason), details)


async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: EventContext) -> None:
    """Orders stay for the shop's accounts, with no one in them: the e-mail and the shipping
    address (name, street, city, postcode) go; the country stays (taxes). Orders placed in the
    seconds before the deletion settled are refused (the tombstone)."""
    await record_erasure(session, event.user_id)
    await session.execute(
        sa.update(Order)
        .where(Order.user_id == event.user_id)
        .values(
            user_email=ERASED_EMAIL,
            shipping_address=sa.func.jsonb_build_object(
                "erased", True, "country", Order.shipping_address["country"].astext
            ),
        )
    )
    await erase_from_outbox(session, event.user_id)


def build_handlers(_: FastAPI) -> dict[type[Event], Handler]:
    return {
        StockReserved: on_stock_reserved,
        StockReservationFailed: on_stock_reservation_failed,
        PaymentProcessed: on_payment_processed,
        UserDeleted: on_user_deleted,
    }
