"""Event consumers of notification_service: each event type mapped to its use case."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service import service
from notification_service.service import Notifier
from shared_events.consumer import EventContext, Handler
from shared_events.events import (
    EmailVerificationRequested,
    EmailVerified,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderShipped,
    PasswordResetRequested,
    PaymentProcessed,
    UserDeleted,
    UserRegistered,
)


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    notifier: Notifier = app.state.notifier

    async def on_user_registered(
        session: AsyncSession, event: UserRegistered, _: EventContext
    ) -> None:
        await service.remember_contact(session, event)  # the welcome waits for EmailVerified

    async def on_email_verified(
        session: AsyncSession, event: EmailVerified, context: EventContext
    ) -> None:
        await notifier.welcome(session, event, context)

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: EventContext) -> None:
        await service.erase(session, event.user_id)

    # Every order event is one use case: tell the customer what the rules say it means.
    order_update: Handler = notifier.order_update
    return {
        UserRegistered: on_user_registered,
        EmailVerified: on_email_verified,
        EmailVerificationRequested: notifier.send_link,
        PasswordResetRequested: notifier.send_link,
        UserDeleted: on_user_deleted,
        OrderCreated: order_update,
        OrderConfirmed: order_update,
        OrderCancelled: order_update,
        PaymentProcessed: order_update,
        OrderShipped: order_update,
    }
