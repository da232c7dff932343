"""Event consumers of notification_service: one function per event type.

Every message goes through :func:`deliver`: rendered from its template file, sent through the
channel's provider, and logged in the same transaction as the consumer's inbox row. A
provider error rolls the transaction back and the consumer retries with backoff.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.domain import render
from notification_service.models import Contact, Delivery
from notification_service.providers import EmailMessage, EmailProvider, SmsMessage, SmsProvider
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
from shared_events.store import (
    ERASED_EMAIL,
    ERASED_NAME,
    erase_from_outbox,
    is_erased,
    record_erasure,
)

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self, email: EmailProvider, sms: SmsProvider, shop_name: str) -> None:
        self.email = email
        self.sms = sms
        self.shop_name = shop_name

    async def deliver(
        self,
        session: AsyncSession,
        *,
        channel: str,
        event: Event,
        user_id: uuid.UUID,
        reference: uuid.UUID | None,
        to: str,
        template: str,
        values: dict[str, str],
        context: EventContext,
    ) -> None:
        """Send one templated message for ``event`` and log it, unless it was sent already.

        The consumer's inbox already drops a redelivered event; the unique delivery row
        (event, channel, template) is the second lock on the door.
        """
        if await is_erased(session, user_id):
            # An event published before the account was deleted, delivered after: no message
            # to a person who asked to be forgotten, and no record of one.
            log.info("message_skipped_erased", channel=channel, template=template)
            return
        already = await session.scalar(
            select(Delivery.id).where(
                Delivery.event_id == event.id,
                Delivery.channel == channel,
                Delivery.template == template,
            )
        )
        if already is not None:
            return
        rendered = render(template, channel, {"shop_name": self.shop_name, **values})
        if channel == "sms":
            message_id = await self.sms.send(SmsMessage(to=to, text=rendered.text.strip()))
            provider = self.sms.name
        else:
            message = EmailMessage(to=to, subject=rendered.subject, text=rendered.text)
            message_id = await self.email.send(message)
            provider = self.email.name
        session.add(
            Delivery(
                event_id=event.id,
                user_id=user_id,
                reference=reference,
                channel=channel,
                template=template,
                recipient=to,
                subject=rendered.subject,
                status="delivered",
                attempts=context.attempt,
                provider=provider,
                provider_message_id=message_id,
            )
        )
        log.info("message_sent", channel=channel, template=template, provider=provider)


async def _contact(session: AsyncSession, user_id: uuid.UUID) -> Contact | None:
    return await session.get(Contact, user_id)


async def _name(session: AsyncSession, user_id: uuid.UUID, email: str) -> str:
    contact = await _contact(session, user_id)
    return contact.full_name if contact else email.split("@")[0]


def _order_ref(order_id: uuid.UUID) -> str:
    return f"#{str(order_id)[:8].upper()}"


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    notifier: Notifier = app.state.notifier

    async def on_user_registered(
        session: AsyncSession, event: UserRegistered, context: EventContext
    ) -> None:
        if await is_erased(session, event.user_id):  # deleted before this arrived
            return
        await session.execute(
            insert(Contact)
            .values(
                user_id=event.user_id,
                email=event.email,
                full_name=event.full_name,
                phone=event.phone,
            )
            .on_conflict_do_update(
                index_elements=[Contact.user_id],
                set_={"email": event.email, "full_name": event.full_name, "phone": event.phone},
            )
        )
        await notifier.deliver(
            session,
            channel="email",
            event=event,
            user_id=event.user_id,
            reference=None,
            to=event.email,
            template="welcome",
            values={"full_name": event.full_name, "email": event.email},
            context=context,
        )

    async def order_email(
        session: AsyncSession,
        event: Any,
        context: EventContext,
        template: str,
        **values: str,
    ) -> None:
        await notifier.deliver(
            session,
            channel="email",
            event=event,
            user_id=event.user_id,
            reference=event.order_id,
            to=event.user_email,
            template=template,
            values={
                "name": await _name(session, event.user_id, event.user_email),
                "order_ref": _order_ref(event.order_id),
                **values,
            },
            context=context,
        )

    async def on_order_created(
        session: AsyncSession, event: OrderCreated, context: EventContext
    ) -> None:
        lines = "\n".join(
            f"  {line.quantity} x {line.name} at {line.unit_price} {event.currency}"
            for line in event.items
        )
        await order_email(
            session,
            event,
            context,
            "order_received",
            lines=lines,
            total=str(event.total_amount),
            currency=event.currency,
        )

    async def on_order_confirmed(
        session: AsyncSession, event: OrderConfirmed, context: EventContext
    ) -> None:
        await order_email(session, event, context, "order_confirmed")

    async def on_order_cancelled(
        session: AsyncSession, event: OrderCancelled, context: EventContext
    ) -> None:
        await order_email(session, event, context, "order_cancelled", reason=event.reason)

    async def on_payment_processed(
        session: AsyncSession, event: PaymentProcessed, context: EventContext
    ) -> None:
        if event.success:
            return
        reason = (event.reason or "the payment was declined.").rstrip(".") + "."
        await order_email(session, event, context, "payment_failed", reason=reason)

    async def on_order_shipped(
        session: AsyncSession, event: OrderShipped, context: EventContext
    ) -> None:
        await order_email(
            session, event, context, "order_shipped", tracking_number=event.tracking_number
        )
        contact = await _contact(session, event.user_id)
        if contact is not None and contact.phone:
            await notifier.deliver(
                session,
                channel="sms",
                event=event,
                user_id=event.user_id,
                reference=event.order_id,
                to=contact.phone,
                template="order_shipped",
                values={
                    "order_ref": _order_ref(event.order_id),
                    "tracking_number": event.tracking_number,
                },
                context=context,
            )

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: EventContext) -> None:
        """The contact goes; the delivery log keeps what was sent and when, to no one."""
        await record_erasure(session, event.user_id)
        await session.execute(sa.delete(Contact).where(Contact.user_id == event.user_id))
        await session.execute(
            sa.update(Delivery)
            .where(Delivery.user_id == event.user_id)
            .values(
                recipient=sa.case((Delivery.channel == "email", ERASED_EMAIL), else_=ERASED_NAME),
                subject=ERASED_NAME,
            )
        )
        await erase_from_outbox(session, event.user_id)

    return {
        UserRegistered: on_user_registered,
        UserDeleted: on_user_deleted,
        OrderCreated: on_order_created,
        OrderConfirmed: on_order_confirmed,
        OrderCancelled: on_order_cancelled,
        PaymentProcessed: on_payment_processed,
        OrderShipped: on_order_shipped,
    }
