"""Payments for orders: authorise on OrderCreated, capture on OrderShipped, void on OrderCancelled.

Each order's payment row is created first and locked (``lock_or_create``), so one order's
events are applied one at a time in any arrival order; ``domain.decide`` says what each event
does to it. The provider's answer and the new status are stored in the event's transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import domain
from payment_service.domain import Action, Status
from payment_service.models import Payment
from payment_service.providers import PaymentProvider
from shared_events.events import (
    OrderCancelled,
    OrderCreated,
    OrderShipped,
    PaymentProcessed,
    UserDeleted,
)
from shared_events.store import (
    ERASED_EMAIL,
    add_event,
    erase_from_outbox,
    is_erased,
    record_erasure,
)
from shared_runtime.db import lock_or_create


async def _lock(session: AsyncSession, order_id: uuid.UUID, user_id: uuid.UUID) -> Payment:
    return await lock_or_create(
        session,
        Payment,
        "order_id",
        order_id,
        id=uuid.uuid4(),
        user_id=user_id,
        status=Status.NEW.value,
    )


async def authorise(session: AsyncSession, provider: PaymentProvider, event: OrderCreated) -> None:
    payment = await _lock(session, event.order_id, event.user_id)
    if domain.decide(payment.status, event) is not Action.AUTHORISE:
        return
    result = await provider.authorise(
        order_id=event.order_id,
        amount=event.total_amount,
        currency=event.currency,
        payment_method_id=event.payment_method_id,
    )
    # An order placed just before its customer deleted the account is still paid for, by no one.
    email = ERASED_EMAIL if await is_erased(session, event.user_id) else event.user_email
    payment.user_email = email
    payment.amount = event.total_amount
    payment.currency = event.currency
    payment.provider = provider.name
    payment.provider_payment_id = result.provider_payment_id
    payment.status = domain.status_after(Action.AUTHORISE, success=result.success).value
    payment.decline_code = result.decline_code
    payment.failure_reason = result.reason
    await add_event(
        session,
        PaymentProcessed(
            order_id=event.order_id,
            payment_id=payment.id,
            success=result.success,
            transaction_id=result.provider_payment_id,
            reason=result.reason,
            decline_code=result.decline_code,
            user_id=event.user_id,
            user_email=email,
        ),
        correlation_id=event.order_id,
    )


async def void(session: AsyncSession, provider: PaymentProvider, event: OrderCancelled) -> None:
    payment = await _lock(session, event.order_id, event.user_id)
    action = domain.decide(payment.status, event)
    if action is Action.NOTHING:
        return
    if action is Action.VOID:
        assert payment.provider_payment_id is not None
        await provider.void(
            order_id=event.order_id, provider_payment_id=payment.provider_payment_id
        )
    payment.status = domain.status_after(action).value


async def capture(session: AsyncSession, provider: PaymentProvider, event: OrderShipped) -> None:
    payment = await _lock(session, event.order_id, event.user_id)
    if domain.decide(payment.status, event) is not Action.CAPTURE:
        return
    assert payment.provider_payment_id is not None
    await provider.capture(order_id=event.order_id, provider_payment_id=payment.provider_payment_id)
    payment.status = domain.status_after(Action.CAPTURE).value


async def erase_customer(session: AsyncSession, event: UserDeleted) -> None:
    """Payments stay for the accounts (amounts, provider ids), with no e-mail in them."""
    await record_erasure(session, event.user_id)
    await session.execute(
        sa.update(Payment).where(Payment.user_id == event.user_id).values(user_email=ERASED_EMAIL)
    )
    await erase_from_outbox(session, event.user_id)


async def list_payments(
    session: AsyncSession,
    user_id: uuid.UUID,
    is_admin: bool,
    order_id: uuid.UUID | None,
    page: int,
    page_size: int,
) -> tuple[list[Payment], int]:
    """The caller's payments (an admin: everyone's), newest first, optionally for one order,
    and how many in all. Tombstones are no payments and are never listed."""
    conditions: list[Any] = [Payment.status != Status.CANCELLED.value]
    owner = domain.listed_owner(user_id, is_admin)
    if owner is not None:
        conditions.append(Payment.user_id == owner)
    if order_id is not None:
        conditions.append(Payment.order_id == order_id)
    total = await session.scalar(sa.select(sa.func.count()).select_from(Payment).where(*conditions))
    rows = await session.scalars(
        sa.select(Payment)
        .where(*conditions)
        .order_by(Payment.created_at.desc(), Payment.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), total or 0
