"""Event consumers of notification_service: one function per event type."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.domain import render
from notification_service.models import Delivery
from notification_service.providers import EmailMessage, EmailProvider
from shared_events.consumer import EventContext, Handler
from shared_events.events import Event, UserRegistered

log = structlog.get_logger(__name__)


async def send_email(
    session: AsyncSession,
    provider: EmailProvider,
    *,
    event: Event,
    user_id: Any,
    to: str,
    template: str,
    values: dict[str, str],
    context: EventContext,
) -> None:
    """Send one templated e-mail for ``event`` and log it, unless it was sent already.

    The consumer's inbox already drops a redelivered event; the unique delivery row is
    the second lock on the door (a replayed parked message, a second consumer).
    """
    already = await session.scalar(
        select(Delivery.id).where(
            Delivery.event_id == event.id,
            Delivery.channel == "email",
            Delivery.template == template,
        )
    )
    if already is not None:
        return
    rendered = render(template, "email", values)
    # Raises ProviderError on failure: the transaction rolls back and the consumer retries.
    message_id = await provider.send(
        EmailMessage(to=to, subject=rendered.subject, text=rendered.text)
    )
    session.add(
        Delivery(
            event_id=event.id,
            user_id=user_id,
            channel="email",
            template=template,
            recipient=to,
            subject=rendered.subject,
            status="delivered",
            attempts=context.attempt,
            provider=provider.name,
            provider_message_id=message_id,
        )
    )
    log.info("email_sent", template=template, provider=provider.name, attempt=context.attempt)


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    provider: EmailProvider = app.state.email_provider
    shop_name: str = app.state.settings.shop_name

    async def on_user_registered(
        session: AsyncSession, event: UserRegistered, context: EventContext
    ) -> None:
        await send_email(
            session,
            provider,
            event=event,
            user_id=event.user_id,
            to=event.email,
            template="welcome",
            values={"shop_name": shop_name, "full_name": event.full_name, "email": event.email},
            context=context,
        )

    return {UserRegistered: on_user_registered}
