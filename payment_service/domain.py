"""Payments for orders: authorise on OrderCreated, capture on OrderShipped, void on OrderCancelled.

Each order's payment row is created first (``INSERT ... ON CONFLICT DO NOTHING``) and locked,
so one order's events are applied one at a time in any arrival order. The provider is called
with an idempotency key derived from the order id, so even a retry after a crash between the
provider's answer and our commit never authorises, captures or voids twice.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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

log = structlog.get_logger(__name__)


async def _lock(session: AsyncSession, order_id: uuid.UUID, user_id: uuid.UUID) -> Payment:
    await session.execute(
        insert(Payment)
        .values(id=uuid.uuid4(), order_id=order_id, user_id=user_id, status="new")
        .on_conflict_do_nothing(index_elements=[Payment.order_id])
    )
    payment = await session.scalar(
        sa.select(Payment)
        .where(Payment.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert payment is not None
    return payment


async def authorise(session: AsyncSession, provider: PaymentProvider, event: OrderCreated) -> None:
    payment = await _lock(session, event.order_id, event.user_id)
    if payment.status != "new":  # a duplicate, or the order was cancelled first
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
    payment.status = "authorised" if result.success else "failed"
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
    if payment.status == "new":
        payment.status = "cancelled"  # the tombstone: a late OrderCreated authorises nothing
    elif payment.status == "authorised":
        assert payment.provider_payment_id is not None
        await provider.void(
            order_id=event.order_id, provider_payment_id=payment.provider_payment_id
        )
        payment.status = "voided"


async def capture(session: AsyncSession, provider: PaymentProvider, event: OrderShipped) -> None:
    payment = await _lock(session, event.order_id, event.user_id)
    if payment.status == "authorised":
        assert payment.provider_payment_id is not None
        await provider.capture(
            order_id=event.order_id, provider_payment_id=payment.provider_payment_id
        )
        payment.status = "captured"
    elif payment.status != "captured":
        # Only a confirmed order ships, and it is confirmed only after the authorisation.
        raise LookupError(f"no authorised payment to capture for order {event.order_id}")


async def erase_customer(session: AsyncSession, event: UserDeleted) -> None:
    """Payments stay for the accounts (amounts, provider ids), with no e-mail in them."""
    await record_erasure(session, event.user_id)
    await session.execute(
        sa.update(Payment).where(Payment.user_id == event.user_id).values(user_email=ERASED_EMAIL)
    )
    await erase_from_outbox(session, event.user_id)
