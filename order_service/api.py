"""HTTP routes of order_service: place, read, cancel and ship orders, and follow one live."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import service
from order_service.domain import Status, request_fingerprint
from order_service.live import OrderChanges, order_stream
from order_service.models import Order
from order_service.schemas import (
    CancelOrder,
    OldestPending,
    OrderOut,
    OrderPage,
    OrdersOverview,
    PlaceOrder,
    SearchOrders,
    ShipOrder,
)
from shared_runtime.auth import AdminUser, Claims, CurrentUser, TokenStates
from shared_runtime.db import SessionDep
from shared_runtime.errors import ApiError

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
    24 hours; after that it may be used for a new order."""
    if not idempotency_key:
        raise ApiError(
            400, "idempotency_key_required", "Send an Idempotency-Key header (e.g. a UUID)."
        )
    order = await service.place_order(
        session,
        request.app.state.peers,
        user,
        authorization=request.headers["authorization"],
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint(body.model_dump(mode="json", by_alias=True)),
        shipping_address=body.shipping_address.model_dump(by_alias=True),
        payment_method_id=body.payment_method_id,
        deadline_s=request.app.state.settings.saga_deadline_s,
    )
    return JSONResponse(order_out(order).model_dump(mode="json", by_alias=True), 202)


@router.get("", response_model=OrderPage)
async def list_orders(
    session: SessionDep,
    user: CurrentUser,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
    status: Status | None = None,
    search: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> OrderPage:
    """The caller's orders, newest first; an admin sees everyone's. To search them (by an
    order's id or the customer's e-mail): ``POST /orders/search``."""
    if search is not None:
        raise ApiError(
            422,
            "search_in_body",
            "Search orders with POST /orders/search and the words in its body: a query string "
            "is written to logs.",
        )
    return await _page(session, user, SearchOrders(status=status, page=page, page_size=page_size))


@router.post("/search", response_model=OrderPage)
async def search_orders(body: SearchOrders, session: SessionDep, user: CurrentUser) -> OrderPage:
    """The caller's orders (an admin's: everyone's), newest first, found by ``search``: the
    start of an order's id, or part of the customer's e-mail. In the body, never the URL: the
    e-mail searched for stays out of access logs and traces."""
    return await _page(session, user, body)


async def _page(session: AsyncSession, user: Claims, query: SearchOrders) -> OrderPage:
    orders, total = await service.list_orders(
        session, user, query.status, query.page, query.page_size, query.search
    )
    return OrderPage(
        items=[order_out(o) for o in orders],
        total=total,
        page=query.page,
        page_size=query.page_size,
    )


@router.get("/overview", response_model=OrdersOverview)
async def orders_overview(session: SessionDep, _: AdminUser) -> OrdersOverview:
    """For the back office: orders by status, and the PENDING order waiting longest."""
    counts, oldest = await service.overview(session)
    return OrdersOverview(
        counts={status.value: counts.get(status.value, 0) for status in Status},
        oldest_pending=OldestPending.model_validate(oldest, from_attributes=True)
        if oldest
        else None,
    )


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> OrderOut:
    return order_out(await service.visible_order(session, user, order_id))


@router.post("/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(
    order_id: uuid.UUID, session: SessionDep, user: CurrentUser, body: CancelOrder | None = None
) -> OrderOut:
    """The owner cancels a PENDING or CONFIRMED order; stock and payment are compensated. An
    administrator cancels anyone's with a ``reason``, which the customer is told (without
    one: 422 ``reason_required``)."""
    reason = body.reason if body else None
    return order_out(await service.cancel(session, user, order_id, reason))


@router.post("/{order_id}/ship", response_model=OrderOut)
async def ship_order(
    order_id: uuid.UUID, body: ShipOrder, session: SessionDep, _: AdminUser
) -> OrderOut:
    return order_out(await service.ship(session, order_id, body.tracking_number))


@router.get(
    "/{order_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `order` events, each the whole order as "
            "GET /orders/{orderId} answers it; `id` is its newest timeline step.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        429: {"description": "Too many streams open for this customer."},
    },
)
async def order_events(
    order_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=r"^\d{1,18}$")
    ] = None,
) -> StreamingResponse:
    """The order, live: sent now, then again after each step of its saga commits (PENDING,
    CONFIRMED or CANCELLED with its reason, SHIPPED with the tracking number), pushed by the
    server. After a reconnect with `Last-Event-ID`, it is sent at once only if it changed
    meanwhile. The caller's own orders only (an admin's: any)."""
    await service.visible_order(session, user, order_id, whole=False)  # 404 for anyone else's
    app = request.app
    changes: OrderChanges = app.state.order_changes
    token_states: TokenStates = app.state.token_states
    watch = changes.open(order_id, user.user_id)

    async def read() -> tuple[int, dict[str, Any]]:
        async with app.state.sessionmaker() as reading:
            order = await service.visible_order(reading, user, order_id)
        newest = max((step.id for step in order.timeline), default=0)
        return newest, order_out(order).model_dump(mode="json", by_alias=True)

    async def authorise(account_changed: bool) -> tuple[str, str] | None:
        if account_changed:
            token_states.forget(user.user_id)
        try:
            await token_states.check(user)
        except ApiError as refused:
            if refused.status_code == 401:
                return refused.code, refused.message
            # user_service cannot say right now (503): the stream goes on, asks again later.
        return None

    def stopping() -> bool:
        return bool(getattr(getattr(app.state, "server", None), "should_exit", False))

    async def events() -> AsyncIterator[bytes]:
        try:
            stream = order_stream(
                watch,
                read,
                authorise,
                last_event_id=int(last_event_id) if last_event_id else None,
                stopping=stopping,
                keep_alive_s=app.state.settings.stream_keep_alive_s,
                expires_at=user.exp,
            )
            async for chunk in stream:
                yield chunk
        finally:
            changes.close(watch)

    body = events()
    # A response never sent (the client left first) never starts its body: its place is
    # freed when the body is dropped.
    weakref.finalize(body, changes.close, watch)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
