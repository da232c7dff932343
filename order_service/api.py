"""HTTP routes of order_service: place, read, cancel and ship orders."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from order_service.domain import AdminShipped, CustomerCancelled, TransitionRefused
from order_service.models import Order, OrderLine
from order_service.saga import advance, lock_order, record
from order_service.schemas import OrderOut, OrderPage, PlaceOrder, ShipOrder
from shared_core.fields import MAX_CART_LINES, MAX_ORDER_TOTAL
from shared_events.events import OrderCreated
from shared_events.events import OrderLine as EventLine
from shared_events.store import add_event, is_erased
from shared_runtime.auth import AdminUser, Claims, CurrentUser
from shared_runtime.db import SessionDep
from shared_runtime.errors import ApiError
from shared_runtime.peers import PeerClient, PeerUnavailable

router = APIRouter(prefix="/orders", tags=["orders"])


def order_out(order: Order) -> OrderOut:
    return OrderOut.model_validate(
        {
            **{c: getattr(order, c) for c in OrderOut.model_fields if hasattr(order, c)},
            "items": [
                {
                    "product_id": line.product_id,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "line_total": line.line_total,
                }
                for line in order.lines
            ],
            "timeline": [
                {"event": t.event, "direction": t.direction, "at": t.at, "details": t.details}
                for t in order.timeline
            ],
        }
    )


def _unavailable(peer: str) -> ApiError:
    return ApiError(
        503,
        "dependency_unavailable",
        f"The order cannot be priced right now ({peer} is unavailable). Try again shortly.",
        {"peer": peer},
    )


async def _priced_lines(peers: PeerClient, authorization: str) -> tuple[list[dict[str, Any]], str]:
    """The caller's cart, priced by product_service now: never by the client, never stale.

    cart_service prices every line from product_service while it answers; a line it could
    only price from its last known data is marked stale, and such a cart is not ordered.
    """
    try:
        cart = await peers.request(
            "GET",
            "cart_service",
            "/cart",
            headers={"Authorization": authorization},
            idempotent=True,
        )
    except PeerUnavailable as exc:
        raise _unavailable("cart_service") from exc
    if cart.status_code != 200:
        raise _unavailable("cart_service")
    items = cart.json()["items"]
    if not items:
        raise ApiError(409, "cart_empty", "The cart is empty.")
    if any(item["stale"] for item in items):
        raise _unavailable("product_service")
    lines = []
    for item in items:
        if not item["active"]:
            raise ApiError(
                409,
                "product_inactive",
                f"{item['name']} is no longer sold; remove it from the cart.",
                {"productId": item["productId"]},
            )
        lines.append(
            {
                "product_id": uuid.UUID(item["productId"]),
                "name": item["name"],
                "quantity": int(item["quantity"]),
                "unit_price": Decimal(item["unitPrice"]),
                "currency": item["currency"],
            }
        )
    currencies = {line["currency"] for line in lines}
    if len(currencies) != 1:
        raise ApiError(409, "currency_mismatch", "The cart mixes currencies.")
    return lines, currencies.pop()


async def _existing(session: AsyncSession, user: Claims, key: str) -> Order | None:
    return await session.scalar(
        sa.select(Order)
        .where(Order.user_id == user.user_id, Order.idempotency_key == key)
        .options(selectinload(Order.lines), selectinload(Order.timeline))
    )


async def _reloaded(session: AsyncSession, order_id: uuid.UUID) -> OrderOut:
    """The order as stored now, timeline included, for the answer."""
    order = await session.scalar(
        sa.select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines), selectinload(Order.timeline))
        .execution_options(populate_existing=True)
    )
    assert order is not None
    return order_out(order)


IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


def request_fingerprint(body: PlaceOrder) -> str:
    canonical = json.dumps(body.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(order: Order, fingerprint: str) -> JSONResponse:
    """The first answer again, if this is the request the key was first used with."""
    if order.request_fingerprint not in (None, fingerprint):
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request; use a new key.",
            {"orderId": str(order.id)},
        )
    return JSONResponse(order_out(order).model_dump(mode="json", by_alias=True), 202)


@router.post("", status_code=202, response_model=OrderOut)
async def place_order(
    body: PlaceOrder,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> Any:
    """Build a PENDING order from the caller's cart; OrderCreated starts the saga.

    The same Idempotency-Key with the same body again answers the same order and creates
    nothing; with another body it is refused (422 idempotency_key_reused). A key is kept
    ``IDEMPOTENCY_KEY_TTL`` (24 h); after that it may be used for a new order."""
    if not idempotency_key:
        raise ApiError(
            400, "idempotency_key_required", "Send an Idempotency-Key header (e.g. a UUID)."
        )
    fingerprint = request_fingerprint(body)
    existing = await _existing(session, user, idempotency_key)
    if existing is not None and existing.created_at < datetime.now(UTC) - IDEMPOTENCY_KEY_TTL:
        existing.idempotency_key = None  # expired: this is a new request
        await session.flush()
        existing = None
    if existing is not None:
        return _same_request(existing, fingerprint)
    if await is_erased(session, user.user_id):  # deleted in the seconds before its token expired
        raise ApiError(401, "token_revoked", "This account no longer exists.")

    settings = request.app.state.settings
    lines, currency = await _priced_lines(request.app.state.peers, request.headers["authorization"])
    total = sum((line["unit_price"] * line["quantity"] for line in lines), Decimal("0"))
    if len(lines) > MAX_CART_LINES or total > MAX_ORDER_TOTAL:
        raise ApiError(
            422,
            "order_limit",
            f"An order has at most {MAX_CART_LINES} lines and a total of at most "
            f"{MAX_ORDER_TOTAL} {currency}.",
            {"maxLines": MAX_CART_LINES, "maxTotal": str(MAX_ORDER_TOTAL)},
        )
    order = Order(
        id=uuid.uuid4(),
        user_id=user.user_id,
        user_email=user.email,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        total_amount=total,
        currency=currency,
        shipping_address=body.shipping_address.model_dump(by_alias=True),
        payment_method_id=body.payment_method_id,
        deadline_at=datetime.now(UTC) + timedelta(seconds=settings.saga_deadline_s),
        lines=[
            OrderLine(
                position=n,
                product_id=line["product_id"],
                name=line["name"],
                quantity=line["quantity"],
                unit_price=line["unit_price"],
            )
            for n, line in enumerate(lines)
        ],
        timeline=[],
    )
    session.add(order)
    try:
        await session.flush()
    except IntegrityError:
        # The same key raced in from a second request: answer the order that won.
        await session.rollback()
        winner = await _existing(session, user, idempotency_key)
        if winner is None:
            raise
        return _same_request(winner, fingerprint)
    event = OrderCreated(
        order_id=order.id,
        user_id=user.user_id,
        total_amount=order.total_amount,
        currency=currency,
        user_email=user.email,
        items=[
            EventLine(
                product_id=line["product_id"],
                name=line["name"],
                quantity=line["quantity"],
                unit_price=line["unit_price"],
            )
            for line in lines
        ],
        payment_method_id=body.payment_method_id,
    )
    await add_event(session, event, correlation_id=order.id)
    record(session, order, "OrderCreated", "emitted", {"totalAmount": str(order.total_amount)})
    await session.flush()
    return await _reloaded(session, order.id)


async def _visible_order(session: AsyncSession, user: Claims, order_id: uuid.UUID) -> Order:
    order = await session.get(
        Order, order_id, options=[selectinload(Order.lines), selectinload(Order.timeline)]
    )
    if order is None or (order.user_id != user.user_id and not user.is_admin):
        raise ApiError(404, "order_not_found", "No order with this id.")
    return order


@router.get("", response_model=OrderPage)
async def list_orders(
    session: SessionDep,
    user: CurrentUser,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
    status: Annotated[str | None, Query(pattern="^(PENDING|CONFIRMED|SHIPPED|CANCELLED)$")] = None,
) -> OrderPage:
    """The caller's orders, newest first; an admin sees everyone's."""
    conditions: list[Any] = [] if user.is_admin else [Order.user_id == user.user_id]
    if status:
        conditions.append(Order.status == status)
    total = await session.scalar(sa.select(sa.func.count()).select_from(Order).where(*conditions))
    orders = await session.scalars(
        sa.select(Order)
        .where(*conditions)
        .options(selectinload(Order.lines), selectinload(Order.timeline))
        .order_by(Order.created_at.desc(), Order.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return OrderPage(
        items=[order_out(o) for o in orders], total=total or 0, page=page, page_size=page_size
    )


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> OrderOut:
    return order_out(await _visible_order(session, user, order_id))


async def _command(
    session: AsyncSession, order_id: uuid.UUID, command: CustomerCancelled | AdminShipped, name: str
) -> OrderOut:
    order = await lock_order(session, order_id)
    assert order is not None
    record(session, order, name, "command")
    try:
        await advance(session, order, command)
    except TransitionRefused as exc:  # the transaction, timeline entry included, rolls back
        raise ApiError(409, exc.code, exc.message, {"status": order.status}) from exc
    await session.flush()
    return await _reloaded(session, order_id)


@router.post("/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(order_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> OrderOut:
    """The owner cancels a PENDING or CONFIRMED order; stock and payment are compensated."""
    order = await _visible_order(session, user, order_id)
    if order.user_id != user.user_id:
        raise ApiError(403, "forbidden", "Only the customer who placed an order can cancel it.")
    return await _command(session, order_id, CustomerCancelled(), "CancelRequested")


@router.post("/{order_id}/ship", response_model=OrderOut)
async def ship_order(
    order_id: uuid.UUID, body: ShipOrder, session: SessionDep, _: AdminUser
) -> OrderOut:
    if await session.get(Order, order_id) is None:
        raise ApiError(404, "order_not_found", "No order with this id.")
    return await _command(session, order_id, AdminShipped(body.tracking_number), "ShipRequested")
