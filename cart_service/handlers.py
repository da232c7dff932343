"""Event consumers of cart_service: one function per event type."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI

from cart_service.service import Carts
from shared_events.consumer import EventContext, Handler
from shared_events.events import Event, OrderCreated, UserDeleted

log = structlog.get_logger(__name__)


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    carts: Carts = app.state.carts

    async def on_order_created(_: Any, event: OrderCreated, context: EventContext) -> None:
        """The ordered lines leave the cart; a redelivered event changes nothing."""
        lines = [(line.product_id, line.quantity) for line in event.items]
        removed = await carts.remove_ordered(event.id, event.user_id, lines)
        log.info("cart_lines_ordered", order_id=str(event.order_id), first_time=removed)

    async def on_user_deleted(_: Any, event: UserDeleted, context: EventContext) -> None:
        """The account is gone: so is its cart (its lines name products, nothing personal
        stays), and none is made again by a request whose token was still taken."""
        await carts.erase(event.user_id)

    return {OrderCreated: on_order_created, UserDeleted: on_user_deleted}
