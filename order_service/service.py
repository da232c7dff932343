"""The order saga's use cases: place an order, then drive it through the saga (each step
through ``saga.advance``: lock the order, let ``domain.decide`` say what happens, store the
new state and emit the events), one transaction each. With ``domain.py`` and ``saga.py`` it
is the whole saga: its first step (pricing from the cart, OrderCreated) is here too, and
handlers, routes and the deadline sweeper only call in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from order_service.domain import (
    AccountErased,
    AdminShipped,
    CustomerCancelled,
    Input,
    NotTheCustomer,
    OrderNotFound,
    PaymentWasAuthorised,
    PaymentWasDeclined,
    PricingUnavailable,
    ReasonRequired,
    ShopCancelled,
    Status,
    StockWasReserved,
    StockWasShort,
    check_same_request,
    key_expired,
    out_of_stock_reason,
    payment_declined_reason,
    price,
)
from order_service.live import CHANNEL as CHANGES_CHANNEL
from order_service.models import LINES, ORDERS, TIMELINE, Order, OrderLine, TimelineEntry
from order_service.saga import advance, lock_order
from shared_events.events import (
    OrderCreated,
    PaymentProcessed,
    StockReservationFailed,
    StockReserved,
    UserDeleted,
)
from shared_events.events import OrderLine as EventLine
from shared_events.store import (
    ERASED_EMAIL,
    add_event,
    erase_from_outbox,
    is_erased,
    record_erasure,
)
from shared_runtime.auth import Claims
from shared_runtime.peers import PeerClient, PeerUnavailable

# --- the first step: an order from the cart ------------------------------------------------


async def _cart(peers: PeerClient, authorization: str) -> list[dict[str, Any]]:
    """The caller's cart, priced by product_service now: never by the client."""
    try:
        cart = await peers.request(
            "GET",
            "cart_service",
            "/cart",
            headers={"Authorization": authorization},
            idempotent=True,
        )
    except PeerUnavailable as exc:
        raise PricingUnavailable("cart_service") from exc
    if cart.status_code != 200:
        raise PricingUnavailable("cart_service")
    items: list[dict[str, Any]] = cart.json()["items"]
    return items


def _with_everything() -> list[Any]:
    return [selectinload(Order.lines), selectinload(Order.timeline)]


async def _by_key(session: AsyncSession, user: Claims, key: str) -> Order | None:
    return await session.scalar(
        sa.select(Order)
        .where(Order.user_id == user.user_id, Order.idempotency_key == key)
        .options(*_with_everything())
    )


async def reloaded(session: AsyncSession, order_id: uuid.UUID) -> Order:
    """The order as stored now, lines and timeline included."""
    order = await session.scalar(
        sa.select(Order)
        .where(Order.id == order_id)
        .options(*_with_everything())
        .execution_options(populate_existing=True)
    )
    assert order is not None
    return order


async def place_order(
    session: AsyncSession,
    peers: PeerClient,
    user: Claims,
    *,
    authorization: str,
    idempotency_key: str,
    fingerprint: str,
    shipping_address: dict[str, Any],
    payment_method_id: str,
    deadline_s: float,
) -> Order:
    """A PENDING order from the caller's cart, and OrderCreated, which starts the saga.

    The same key with the same body is the same request: its order, nothing created. With
    another body it is refused; after ``IDEMPOTENCY_KEY_TTL`` the key is free again."""
    existing = await _by_key(session, user, idempotency_key)
    if existing is not None and key_expired(existing.created_at, datetime.now(UTC)):
        existing.idempotency_key = None  # expired: this is a new request
        await session.flush()
        existing = None
    if existing is not None:
        check_same_request(existing.id, existing.request_fingerprint, fingerprint)
        return existing
    priced = price(await _cart(peers, authorization))
    # Deleted in the seconds before its token was refused: checked under the person's lock,
    # held to the commit, so the order either commits before the erasure (which anonymises
    # it) or is refused.
    if await is_erased(session, user.user_id):
        raise AccountErased("This account no longer exists.")
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": user.user_id,
        "user_email": user.email,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "status": Status.PENDING,
        "stock_status": "pending",
        "payment_status": "pending",
        "total_amount": priced.total,
        "currency": priced.currency,
        "shipping_address": shipping_address,
        "payment_method_id": payment_method_id,
        "deadline_at": datetime.now(UTC) + timedelta(seconds=deadline_s),
    }
    try:
        created_at, updated_at = (
            await session.execute(
                ORDERS.insert().values(values).returning(ORDERS.c.created_at, ORDERS.c.updated_at)
            )
        ).one()
    except IntegrityError:
        # The same key raced in from a second request: answer the order that won.
        await session.rollback()
        winner = await _by_key(session, user, idempotency_key)
        if winner is None:
            raise
        check_same_request(winner.id, winner.request_fingerprint, fingerprint)
        return winner
    lines = [
        {
            "order_id": values["id"],
            "position": n,
            "product_id": line.product_id,
            "name": line.name,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for n, line in enumerate(priced.lines)
    ]
    await session.execute(LINES.insert(), lines)
    event = OrderCreated(
        order_id=values["id"],
        user_id=user.user_id,
        total_amount=priced.total,
        currency=priced.currency,
        user_email=user.email,
        items=[
            EventLine(
                product_id=line.product_id,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in priced.lines
        ],
        payment_method_id=payment_method_id,
    )
    await add_event(session, event, correlation_id=values["id"])
    step = {
        "order_id": values["id"],
        "event": "OrderCreated",
        "direction": "emitted",
        "details": {"totalAmount": str(priced.total)},
    }
    at = await session.scalar(TIMELINE.insert().values(step).returning(TIMELINE.c.at))
    # The answer, from what was written: no second read of the order.
    return Order(
        **values,
        created_at=created_at,
        updated_at=updated_at,
        lines=[OrderLine(**line) for line in lines],
        timeline=[TimelineEntry(**step, at=at)],
    )


# --- reading ---------------------------------------------------------------------------------


async def visible_order(
    session: AsyncSession, user: Claims, order_id: uuid.UUID, *, whole: bool = True
) -> Order:
    """The order, if the caller placed it or is an admin; with ``whole=False`` its row alone
    (its lines and timeline are not loaded)."""
    order = await session.get(Order, order_id, options=_with_everything() if whole else ())
    if order is None or (order.user_id != user.user_id and not user.is_admin):
        raise OrderNotFound("No order with this id.")
    return order


async def overview(session: AsyncSession) -> tuple[dict[str, int], Order | None]:
    """Orders by status, and the oldest PENDING one (the partial index on PENDING finds it)."""
    counts = dict(
        (
            await session.execute(sa.select(Order.status, sa.func.count()).group_by(Order.status))
        ).all()
    )
    oldest = await session.scalar(
        sa.select(Order).where(Order.status == Status.PENDING).order_by(Order.created_at).limit(1)
    )
    return counts, oldest


async def list_orders(
    session: AsyncSession,
    user: Claims,
    status: Status | None,
    page: int,
    page_size: int,
    search: str | None = None,
) -> tuple[list[Order], int]:
    """The caller's orders (an admin's: everyone's), newest first, and how many in all;
    ``search``: the start of an order's id, or part of the customer's e-mail."""
    conditions: list[Any] = [] if user.is_admin else [Order.user_id == user.user_id]
    if status:
        conditions.append(Order.status == status)
    if search:
        text = search.lower()
        conditions.append(
            sa.or_(
                sa.cast(Order.id, sa.String).startswith(text, autoescape=True),
                sa.func.lower(Order.user_email).contains(text, autoescape=True),
            )
        )
    total = await session.scalar(sa.select(sa.func.count()).select_from(Order).where(*conditions))
    orders = await session.scalars(
        sa.select(Order)
        .where(*conditions)
        .options(*_with_everything())
        .order_by(Order.created_at.desc(), Order.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(orders), total or 0


# --- commands: the customer cancels, an admin ships --------------------------------------------


async def _command(
    session: AsyncSession,
    order_id: uuid.UUID,
    command: CustomerCancelled | ShopCancelled | AdminShipped,
    name: str,
    details: dict[str, Any] | None = None,
) -> Order:
    order = await lock_order(session, order_id)
    assert order is not None
    # TransitionRefused rolls the transaction back.
    await advance(session, order, command, (name, "command", details))
    return await reloaded(session, order_id)


async def cancel(
    session: AsyncSession, user: Claims, order_id: uuid.UUID, reason: str | None = None
) -> Order:
    """The customer cancels their order; an administrator cancels anyone's, with a reason the
    customer is told."""
    order = await visible_order(session, user, order_id)
    if order.user_id == user.user_id:
        return await _command(session, order_id, CustomerCancelled(), "CancelRequested")
    if not user.is_admin:
        raise NotTheCustomer("Only the customer who placed an order can cancel it.")
    if not reason:
        raise ReasonRequired(
            "Say why the shop cancels this order (reason): the customer is told.",
            {"field": "reason"},
        )
    return await _command(
        session,
        order_id,
        ShopCancelled(reason),
        "CancelRequested",
        {"by": "shop", "reason": reason},
    )


async def ship(session: AsyncSession, order_id: uuid.UUID, tracking_number: str) -> Order:
    if await session.get(Order, order_id) is None:
        raise OrderNotFound("No order with this id.")
    return await _command(session, order_id, AdminShipped(tracking_number), "ShipRequested")


# --- what the other services report ------------------------------------------------------------


class UnknownOrder(Exception):
    """An event about an order this service does not have (yet): retried, then parked."""


async def _apply(
    session: AsyncSession, event: Any, saga_input: Input, details: dict[str, Any] | None = None
) -> None:
    order = await lock_order(session, event.order_id)
    if order is None:
        raise UnknownOrder(f"order {event.order_id} not found")
    await advance(session, order, saga_input, (event.event_type(), "received", details))


async def stock_reserved(session: AsyncSession, event: StockReserved) -> None:
    await _apply(session, event, StockWasReserved())


async def stock_short(session: AsyncSession, event: StockReservationFailed) -> None:
    names = dict(
        (
            await session.execute(
                sa.select(LINES.c.product_id, LINES.c.name).where(
                    LINES.c.order_id == event.order_id
                )
            )
        ).all()
    )
    short = [
        (names.get(item.product_id, str(item.product_id)), item.quantity, item.available)
        for item in event.items
    ]
    reason = out_of_stock_reason(short) if short else event.reason
    await _apply(session, event, StockWasShort(reason), {"reason": reason})


async def payment_processed(session: AsyncSession, event: PaymentProcessed) -> None:
    if event.success:
        await _apply(session, event, PaymentWasAuthorised(), {"success": True})
        return
    reason = payment_declined_reason(event.decline_code, event.reason)
    details = {"success": False, "declineCode": event.decline_code, "reason": reason}
    await _apply(session, event, PaymentWasDeclined(reason), details)


async def erase_customer(session: AsyncSession, event: UserDeleted) -> None:
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


async def end_streams(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The account's tokens were revoked (or it is gone): its live streams, in every process,
    check their token at once and end (order_service.live; delivered at commit)."""
    await session.execute(sa.select(sa.func.pg_notify(CHANGES_CHANNEL, f"user:{user_id}")))
