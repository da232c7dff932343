"""Event consumers of product_service: one function per event type."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from product_service import service
from product_service.cache import CatalogCache
from shared_events.consumer import EventContext, Handler
from shared_events.events import Event, OrderCancelled, OrderCreated, OrderShipped


def build_handlers(app: FastAPI) -> dict[type[Event], Handler]:
    def cache() -> CatalogCache:
        catalog_cache: CatalogCache = app.state.cache
        return catalog_cache

    async def on_order_created(session: AsyncSession, event: OrderCreated, _: EventContext) -> None:
        await service.reserve(session, cache(), event)

    async def on_order_cancelled(
        session: AsyncSession, event: OrderCancelled, _: EventContext
    ) -> None:
        await service.release(session, cache(), event.order_id)

    async def on_order_shipped(session: AsyncSession, event: OrderShipped, _: EventContext) -> None:
        await service.sell(session, cache(), event.order_id)

    return {
        OrderCreated: on_order_created,
        OrderCancelled: on_order_cancelled,
        OrderShipped: on_order_shipped,
    }
