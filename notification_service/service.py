"""Use cases of notification_service: remember contacts, send messages, erase a customer.

Every message goes through :meth:`Notifier.deliver`: rendered from its template file, sent
through the channel's provider, and logged in the same transaction as the consumer's inbox
row. A provider error rolls the transaction back and the consumer retries with backoff.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service import domain
from notification_service.models import Contact, Delivery
from notification_service.providers import EmailMessage, EmailProvider, SmsMessage, SmsProvider
from notification_service.templates import render
from shared_events.consumer import EventContext
from shared_events.events import (
    EmailVerificationRequested,
    EmailVerified,
    Event,
    PasswordResetRequested,
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
    def __init__(
        self, email: EmailProvider, sms: SmsProvider, shop_name: str, shop_url: str
    ) -> None:
        self.email = email
        self.sms = sms
        self.shop_name = shop_name
        self.shop_url = shop_url

    async def deliver(
        self,
        session: AsyncSession,
        *,
        event: Event,
        user_id: uuid.UUID,
        message: domain.Message,
        context: EventContext,
    ) -> None:
        """Send one templated message for ``event`` and log it, unless it was sent already.

        The consumer's inbox already drops a redelivered event; the unique delivery row
        (event, channel, template) is the second lock on the door.
        """
        channel, template = message.channel, message.template
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
        rendered = render(template, channel, {"shop_name": self.shop_name, **message.values})
        if channel == "sms":
            sms = SmsMessage(to=message.to, text=rendered.text.strip())
            message_id = await self.sms.send(sms)
            provider = self.sms.name
        else:
            email = EmailMessage(to=message.to, subject=rendered.subject, text=rendered.text)
            message_id = await self.email.send(email)
            provider = self.email.name
        session.add(
            Delivery(
                event_id=event.id,
                user_id=user_id,
                reference=message.reference,
                channel=channel,
                template=template,
                recipient=message.to,
                subject=rendered.subject,
                status="delivered",
                attempts=context.attempt,
                provider=provider,
                provider_message_id=message_id,
            )
        )
        log.info("message_sent", channel=channel, template=template, provider=provider)

    async def welcome(
        self, session: AsyncSession, event: EmailVerified, context: EventContext
    ) -> None:
        """A verified address: the contact may be greeted by name now, starting with the
        welcome e-mail."""
        if not await remember_contact(session, event):
            return
        message = domain.welcome(event)
        await self.deliver(
            session, event=event, user_id=event.user_id, message=message, context=context
        )

    async def send_link(
        self,
        session: AsyncSession,
        event: EmailVerificationRequested | PasswordResetRequested,
        context: EventContext,
    ) -> None:
        """The e-mail with a link (verify the address, reset the password)."""
        message = domain.link_email(event, self.shop_url)
        await self.deliver(
            session, event=event, user_id=event.user_id, message=message, context=context
        )

    async def order_update(
        self, session: AsyncSession, event: domain.OrderEvent, context: EventContext
    ) -> None:
        """Send what an order event leads to; the contact gives the name and the phone."""
        contact = await session.get(Contact, event.user_id)
        for message in domain.order_messages(event, contact):
            await self.deliver(
                session, event=event, user_id=event.user_id, message=message, context=context
            )


async def remember_contact(session: AsyncSession, event: UserRegistered | EmailVerified) -> bool:
    """Keep (or refresh) how to reach the customer, verified once an EmailVerified came (in
    whichever order the two arrive: a contact never goes back to unverified); False if the
    account is already erased (deleted before this event arrived), and then nothing is kept."""
    if await is_erased(session, event.user_id):
        return False
    verified = isinstance(event, EmailVerified)
    await session.execute(
        insert(Contact)
        .values(
            user_id=event.user_id,
            email=event.email,
            full_name=event.full_name,
            phone=event.phone,
            verified=verified,
        )
        .on_conflict_do_update(
            index_elements=[Contact.user_id],
            set_={
                "email": event.email,
                "full_name": event.full_name,
                "phone": event.phone,
                "verified": Contact.verified | verified,
            },
        )
    )
    return True


async def erase(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The contact goes; the delivery log keeps what was sent and when, to no one."""
    await record_erasure(session, user_id)
    await session.execute(sa.delete(Contact).where(Contact.user_id == user_id))
    await session.execute(
        sa.update(Delivery)
        .where(Delivery.user_id == user_id)
        .values(
            recipient=sa.case((Delivery.channel == "email", ERASED_EMAIL), else_=ERASED_NAME),
            subject=ERASED_NAME,
        )
    )
    await erase_from_outbox(session, user_id)
