"""Event consumers of payment_service: one function per event type."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import service
from payment_service.providers import PaymentProvider
from shared_events.consumer import EventContext, Handler
from shared_events.events import Event, OrderCancelled, OrderCreated, OrderShipped, UserDeleted


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    provider: PaymentProvider = app.state.payment_provider

    async def on_order_created(session: AsyncSession, event: OrderCreated, _: EventContext) -> None:
        await service.authorise(session, provider, event)

    async def on_order_cancelled(
        session: AsyncSession, event: OrderCancelled, _: EventContext
    ) -> None:
        await service.void(session, provider, event)

    async def on_order_shipped(session: AsyncSession, event: OrderShipped, _: EventContext) -> None:
        await service.capture(session, provider, event)

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: EventContext) -> None:
        await service.erase_customer(session, event)

    return {
        OrderCreated: on_order_created,
        OrderCancelled: on_order_cancelled,
        OrderShipped: on_order_shipped,
        UserDeleted: on_user_deleted,
    }
