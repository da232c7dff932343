"""Stock for orders: reserve all lines or none, release on cancel, sell on shipping.

Each order's reservation row is created first (``INSERT ... ON CONFLICT DO NOTHING``) and
locked, so the events of one order are applied one at a time whatever their arrival order;
products are locked in id order (no deadlocks between concurrent orders) and the database's
CHECK constraints keep every quantity at zero or above.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from product_service.cache import CatalogCache
from product_service.models import Product, StockReservation
from shared_core.context import after_commit
from shared_events.events import (
    InventoryUpdated,
    OrderCreated,
    StockLine,
    StockReservationFailed,
    StockReserved,
)
from shared_events.store import add_event


async def _lock_reservation(session: AsyncSession, order_id: uuid.UUID) -> StockReservation:
    await session.execute(
        insert(StockReservation)
        .values(order_id=order_id, status="new", lines=[])
        .on_conflict_do_nothing(index_elements=[StockReservation.order_id])
    )
    reservation = await session.scalar(
        sa.select(StockReservation)
        .where(StockReservation.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert reservation is not None
    return reservation


async def _lock_products(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Product]:
    rows = await session.scalars(
        sa.select(Product)
        .where(Product.id.in_(ids))
        .order_by(Product.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {p.id: p for p in rows}


async def _stock_changed(
    session: AsyncSession, cache: CatalogCache, products: list[Product]
) -> None:
    for product in products:
        await add_event(
            session,
            InventoryUpdated(product_id=product.id, new_quantity=product.available_quantity),
            correlation_id=product.id,
        )
    ids = [p.id for p in products]

    async def bump() -> None:
        for product_id in ids:
            await cache.stock_changed(product_id)

    after_commit(session, bump)


async def reserve(session: AsyncSession, cache: CatalogCache, event: OrderCreated) -> None:
    reservation = await _lock_reservation(session, event.order_id)
    if reservation.status != "new":  # a duplicate, or the order was cancelled first
        return
    wanted: dict[uuid.UUID, int] = {}
    for line in event.items:
        wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
    products = await _lock_products(session, sorted(wanted))
    short = [
        StockLine(
            product_id=pid,
            quantity=qty,
            available=products[pid].available_quantity if pid in products else 0,
        )
        for pid, qty in wanted.items()
        if pid not in products or not products[pid].active or products[pid].available_quantity < qty
    ]
    lines: list[dict[str, Any]] = [
        {"productId": str(pid), "quantity": qty} for pid, qty in wanted.items()
    ]
    if short:
        reservation.status = "failed"
        reservation.lines = lines
        await add_event(
            session,
            StockReservationFailed(order_id=event.order_id, reason="out_of_stock", items=short),
            correlation_id=event.order_id,
        )
        return
    for pid, qty in wanted.items():
        products[pid].available_quantity -= qty
        products[pid].reserved_quantity += qty
    reservation.status = "reserved"
    reservation.lines = lines
    await add_event(
        session,
        StockReserved(
            order_id=event.order_id,
            items=[StockLine(product_id=pid, quantity=qty) for pid, qty in wanted.items()],
        ),
        correlation_id=event.order_id,
    )
    await _stock_changed(session, cache, [products[pid] for pid in sorted(wanted)])


async def _move(
    session: AsyncSession, cache: CatalogCache, reservation: StockReservation, to: str
) -> None:
    """Release (to "released") or sell (to "sold") what a reservation holds."""
    amounts = {
        uuid.UUID(str(line["productId"])): int(str(line["quantity"])) for line in reservation.lines
    }
    products = await _lock_products(session, sorted(amounts))
    for pid, qty in amounts.items():
        product = products[pid]
        product.reserved_quantity -= qty
        if to == "released":
            product.available_quantity += qty
        else:
            product.sold_quantity += qty
    reservation.status = to
    if to == "released":
        await _stock_changed(session, cache, [products[pid] for pid in sorted(amounts)])


async def release(session: AsyncSession, cache: CatalogCache, order_id: uuid.UUID) -> None:
    reservation = await _lock_reservation(session, order_id)
    if reservation.status == "new":
        reservation.status = "cancelled"  # the tombstone: a late OrderCreated reserves nothing
    elif reservation.status == "reserved":
        await _move(session, cache, reservation, "released")


async def sell(session: AsyncSession, cache: CatalogCache, order_id: uuid.UUID) -> None:
    reservation = await _lock_reservation(session, order_id)
    if reservation.status == "reserved":
        await _move(session, cache, reservation, "sold")
    elif reservation.status == "new":
        # Shipping needs a confirmed order, which needs the reservation: this cannot come
        # first unless events are corrupt. Refuse, so it is retried and then parked.
        raise LookupError(f"no reservation for shipped order {order_id}")
