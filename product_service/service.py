"""Use cases of product_service: product writes, search, and stock for orders.

Callers commit; cache bumps run after the commit. Stock for an order: its reservation row is
created if need be and locked (``lock_or_create``), so the events of one order are applied one
at a time whatever their arrival order; products are locked in id order (no deadlocks between
concurrent orders) and the database's CHECK constraints keep every quantity at zero or above.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from product_service import domain
from product_service.cache import CatalogCache
from product_service.domain import ProductNotFound, SearchQuery, SkuTaken, Stock
from product_service.models import Category, Product, StockReservation
from product_service.schemas import ProductCreate, ProductFields, ProductPatch
from shared_core.context import after_commit
from shared_events.events import (
    InventoryUpdated,
    OrderCreated,
    StockLine,
    StockReservationFailed,
    StockReserved,
)
from shared_events.store import add_event
from shared_runtime.db import lock_or_create

# Catalog.


async def ensure_categories(session: AsyncSession, slugs: set[str]) -> None:
    if slugs:
        await session.execute(
            insert(Category)
            .values([{"slug": s, "name": domain.category_name(s)} for s in sorted(slugs)])
            .on_conflict_do_nothing(index_elements=[Category.slug])
        )


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
        raise ProductNotFound()
    return product


async def get_products(session: AsyncSession, product_ids: list[uuid.UUID]) -> list[Product]:
    """The products among ``product_ids`` that exist (inactive ones included)."""
    found = await session.scalars(sa.select(Product).where(Product.id.in_(product_ids)))
    return list(found)


async def _check_sku_free(
    session: AsyncSession, sku: str, product_id: uuid.UUID | None = None
) -> None:
    query = sa.select(Product.id).where(Product.sku == sku)
    if product_id is not None:
        query = query.where(Product.id != product_id)
    if await session.scalar(query) is not None:
        raise SkuTaken(sku)


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("image_url") is not None:
        fields["image_url"] = str(fields["image_url"])
    return fields


async def _flush(session: AsyncSession, sku: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent write took the SKU
        raise SkuTaken(sku) from exc


async def create_product(
    session: AsyncSession, cache: CatalogCache, data: ProductCreate
) -> Product:
    await _check_sku_free(session, data.sku)
    await ensure_categories(session, {data.category})
    fields = _columns(data.model_dump(exclude={"quantity"}))
    product = Product(id=uuid.uuid4(), available_quantity=data.quantity, **fields)
    session.add(product)
    await _flush(session, data.sku)
    after_commit(session, lambda: cache.product_changed(product.id))
    if data.quantity:
        await add_event(
            session,
            InventoryUpdated(product_id=product.id, new_quantity=data.quantity),
            correlation_id=product.id,
        )
    await session.refresh(product)
    return product


async def update_product(
    session: AsyncSession,
    cache: CatalogCache,
    product_id: uuid.UUID,
    data: ProductFields | ProductPatch,
) -> Product:
    """PUT sends every field, PATCH only the ones to change."""
    product = await get_product(session, product_id)
    fields = _columns(data.model_dump(exclude_unset=isinstance(data, ProductPatch)))
    if "sku" in fields and fields["sku"] != product.sku:
        await _check_sku_free(session, fields["sku"], product_id)
    if "category" in fields:
        await ensure_categories(session, {fields["category"]})
    for name, value in fields.items():
        setattr(product, name, value)
    await _flush(session, product.sku)
    after_commit(session, lambda: cache.product_changed(product_id))
    await session.refresh(product)
    return product


async def deactivate_product(
    session: AsyncSession, cache: CatalogCache, product_id: uuid.UUID
) -> None:
    """Products are never deleted (orders refer to them): they stop being sold."""
    product = await get_product(session, product_id)
    product.active = False
    after_commit(session, lambda: cache.product_changed(product_id))


async def set_inventory(
    session: AsyncSession, cache: CatalogCache, product_id: uuid.UUID, quantity: int
) -> Product:
    """Set the available quantity; InventoryUpdated goes out only when it really changed."""
    product = await session.scalar(
        sa.select(Product).where(Product.id == product_id).with_for_update()
    )
    if product is None:
        raise ProductNotFound()
    if product.available_quantity != quantity:
        product.available_quantity = quantity
        await add_event(
            session,
            InventoryUpdated(product_id=product_id, new_quantity=quantity),
            correlation_id=product_id,
        )
        after_commit(session, lambda: cache.stock_changed(product_id))
    await session.flush()
    await session.refresh(product)
    return product


def search_statements(query: SearchQuery) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The catalog search as two statements: the count of matches (up to MATCH_CAP + 1) and
    the page. ``make bench-scale`` explains them as they are run."""
    conditions: list[Any] = [] if query.include_inactive else [Product.active.is_(True)]
    ts_query = None
    if query.search:
        ts_query = sa.func.websearch_to_tsquery("english", query.search)
        conditions.append(Product.search_vector.op("@@")(ts_query))
    if query.category:
        conditions.append(Product.category == query.category)
    if query.min_price is not None:
        conditions.append(Product.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Product.price <= query.max_price)

    matches = sa.select(Product.id).where(*conditions).limit(domain.MATCH_CAP + 1).subquery()
    count = sa.select(sa.func.count()).select_from(matches)
    offset = (query.page - 1) * query.page_size
    if query.sort == "relevance" and ts_query is not None:
        # Ranked among the first MATCH_CAP matches (ranking all 200,000 products that share a
        # common word reads each); only the page's rows are then read whole.
        window = (
            sa.select(Product.id, sa.func.ts_rank(Product.search_vector, ts_query).label("rank"))
            .where(*conditions)
            .limit(domain.MATCH_CAP)
            .subquery()
        )
        ranked = (
            sa.select(window.c.id, window.c.rank)
            .order_by(window.c.rank.desc(), window.c.id)
            .offset(offset)
            .limit(query.page_size)
            .subquery()
        )
        page = (
            sa.select(Product)
            .join(ranked, ranked.c.id == Product.id)
            .order_by(ranked.c.rank.desc(), Product.id)
        )
        return count, page
    orders: dict[str, list[Any]] = {
        "price": [Product.price.asc()],
        "-price": [Product.price.desc()],
        "name": [Product.name.asc()],
        "-name": [Product.name.desc()],
    }
    order = orders.get(query.sort, [Product.created_at.desc()])
    # The id makes pages disjoint and complete.
    page = sa.select(Product).where(*conditions).order_by(*order, Product.id)
    return count, page.offset(offset).limit(query.page_size)


async def search_products(
    session: AsyncSession, query: SearchQuery
) -> tuple[list[Product], int, bool]:
    """One page of matches, their number (at most MATCH_CAP) and whether there are more."""
    count, page = search_statements(query)
    # Planned for these words each time: a prepared statement's generic plan, made once for
    # any words, reads the GIN index for all 170,000 products with a common word (40 ms)
    # where a plan for that word stops after the first thousand of a scan (2 ms).
    await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    matched = int(await session.scalar(count) or 0)
    rows = await session.scalars(page)
    return list(rows), min(matched, domain.MATCH_CAP), matched > domain.MATCH_CAP


async def list_categories(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.execute(
        sa.select(Category.slug, Category.name, sa.func.count(Product.id))
        .select_from(Category)
        .outerjoin(Product, sa.and_(Product.category == Category.slug, Product.active.is_(True)))
        .group_by(Category.slug, Category.name)
        .order_by(Category.slug)
    )
    return [(slug, name, count) for slug, name, count in rows]


# Stock for orders: reserve all lines or none, release on cancel, sell on shipping.


async def _lock_reservation(session: AsyncSession, order_id: uuid.UUID) -> StockReservation:
    return await lock_or_create(
        session, StockReservation, "order_id", order_id, status=domain.NEW, lines=[]
    )


async def _lock_products(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Product]:
    rows = await session.scalars(
        sa.select(Product)
        .where(Product.id.in_(ids))
        .order_by(Product.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {p.id: p for p in rows}


def _stock(product: Product) -> Stock:
    return Stock(
        available=product.available_quantity,
        reserved=product.reserved_quantity,
        sold=product.sold_quantity,
        active=product.active,
    )


def _apply(product: Product, move: Callable[[Stock, int], Stock], quantity: int) -> None:
    stock = move(_stock(product), quantity)
    product.available_quantity = stock.available
    product.reserved_quantity = stock.reserved
    product.sold_quantity = stock.sold


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
    if not domain.may_reserve(reservation.status):
        return
    wanted = domain.requested((line.product_id, line.quantity) for line in event.items)
    products = await _lock_products(session, sorted(wanted))
    short = domain.shortages(wanted, {pid: _stock(p) for pid, p in products.items()})
    reservation.lines = domain.reservation_lines(wanted)
    if short:
        reservation.status = domain.FAILED
        await add_event(
            session,
            StockReservationFailed(order_id=event.order_id, reason="out_of_stock", items=short),
            correlation_id=event.order_id,
        )
        return
    for pid, qty in wanted.items():
        _apply(products[pid], domain.reserve, qty)
    reservation.status = domain.RESERVED
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
    session: AsyncSession, reservation: StockReservation, move: Callable[[Stock, int], Stock]
) -> list[Product]:
    """Apply ``move`` (release or sell) to what a reservation holds; the products, by id."""
    amounts = domain.held(reservation.lines)
    products = await _lock_products(session, sorted(amounts))
    for pid, qty in amounts.items():
        _apply(products[pid], move, qty)
    return [products[pid] for pid in sorted(amounts)]


async def release(session: AsyncSession, cache: CatalogCache, order_id: uuid.UUID) -> None:
    reservation = await _lock_reservation(session, order_id)
    status = domain.status_after_cancel(reservation.status)
    if status == reservation.status:
        return
    if status == domain.RELEASED:
        await _stock_changed(session, cache, await _move(session, reservation, domain.release))
    reservation.status = status


async def sell(session: AsyncSession, cache: CatalogCache, order_id: uuid.UUID) -> None:
    """Selling moves reserved stock to sold: the available quantity (what events and cached
    products show) does not change, so nothing is announced."""
    reservation = await _lock_reservation(session, order_id)
    status = domain.status_after_shipping(reservation.status, order_id)
    if status != reservation.status:
        await _move(session, reservation, domain.sell)
        reservation.status = status
