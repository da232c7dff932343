"""Event consumers of notification_service: one function per event type, each a use case."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service import service
from notification_service.service import Notifier
from shared_events.consumer import EventContext, Handler
from shared_events.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderShipped,
    PaymentProcessed,
    UserDeleted,
    UserRegistered,
)


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    notifier: Notifier = app.state.notifier

    async def on_user_registered(
        session: AsyncSession, event: UserRegistered, context: EventContext
    ) -> None:
        await notifier.welcome(session, event, context)

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: EventContext) -> None:
        await service.erase(session, event.user_id)

    async def on_order_created(
        session: AsyncSession, event: OrderCreated, context: EventContext
    ) -> None:
        await notifier.order_update(session, event, context)

    async def on_order_confirmed(
        session: AsyncSession, event: OrderConfirmed, context: EventContext
    ) -> None:
        await notifier.order_update(session, event, context)

    async def on_order_cancelled(
        session: AsyncSession, event: OrderCancelled, context: EventContext
    ) -> None:
        await notifier.order_update(session, event, context)

    async def on_payment_processed(
        session: AsyncSession, event: PaymentProcessed, context: EventContext
    ) -> None:
        await notifier.order_update(session, event, context)

    async def on_order_shipped(
        session: AsyncSession, event: OrderShipped, context: EventContext
    ) -> None:
        await notifier.order_update(session, event, context)

    return {
        UserRegistered: on_user_registered,
        UserDeleted: on_user_deleted,
        OrderCreated: on_order_created,
        OrderConfirmed: on_order_confirmed,
        OrderCancelled: on_order_cancelled,
        PaymentProcessed: on_payment_processed,
        OrderShipped: on_order_shipped,
    }
