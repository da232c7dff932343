"""Event consumers of order_service: each reported fact moves the order's saga."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import service
from shared_events.consumer import EventContext, Handler
from shared_events.events import (
    Event,
    PaymentProcessed,
    StockReservationFailed,
    StockReserved,
    UserDeleted,
    UserTokensRevoked,
)


async def on_stock_reserved(session: AsyncSession, event: StockReserved, _: EventContext) -> None:
    await service.stock_reserved(session, event)


async def on_stock_reservation_failed(
    session: AsyncSession, event: StockReservationFailed, _: EventContext
) -> None:
    await service.stock_short(session, event)


async def on_payment_processed(
    session: AsyncSession, event: PaymentProcessed, _: EventContext
) -> None:
    await service.payment_processed(session, event)


async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: EventContext) -> None:
    await service.erase_customer(session, event)
    await service.end_streams(session, event.user_id)


async def on_user_tokens_revoked(
    session: AsyncSession, event: UserTokensRevoked, _: EventContext
) -> None:
    await service.end_streams(session, event.user_id)


def build_handlers(_: FastAPI) -> dict[type[Event], Handler]:
    return {
        StockReserved: on_stock_reserved,
        StockReservationFailed: on_stock_reservation_failed,
        PaymentProcessed: on_payment_processed,
        UserDeleted: on_user_deleted,
        UserTokensRevoked: on_user_tokens_revoked,
    }
