"""Catalog rules: product writes, stock, search. Callers commit; cache bumps run after commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from product_service.cache import CatalogCache
from product_service.models import Category, Product
from product_service.schemas import ProductCreate, ProductFields, ProductPatch
from shared_core.context import after_commit
from shared_events.events import InventoryUpdated
from shared_events.store import add_event
from shared_runtime.errors import ApiError


def category_name(slug: str) -> str:
    return slug.replace("-", " ").capitalize()


async def ensure_categories(session: AsyncSession, slugs: set[str]) -> None:
    if slugs:
        await session.execute(
            insert(Category)
            .values([{"slug": s, "name": category_name(s)} for s in sorted(slugs)])
            .on_conflict_do_nothing(index_elements=[Category.slug])
        )


def _not_found() -> ApiError:
    return ApiError(404, "product_not_found", "No product with this id.")


def _sku_taken(sku: str) -> ApiError:
    return ApiError(409, "sku_taken", f"Another product already has SKU {sku!r}.", {"sku": sku})


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
        raise _not_found()
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
        raise _sku_taken(sku)


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("image_url") is not None:
        fields["image_url"] = str(fields["image_url"])
    return fields


async def _flush(session: AsyncSession, sku: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent write took the SKU
        raise _sku_taken(sku) from exc


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
        raise _not_found()
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


@dataclass(frozen=True)
class SearchQuery:
    search: str | None
    category: str | None
    min_price: Decimal | None
    max_price: Decimal | None
    sort: str
    page: int
    page_size: int

    def cache_params(self) -> dict[str, Any]:
        return {k: (str(v) if v is not None else None) for k, v in self.__dict__.items()}


async def search_products(session: AsyncSession, query: SearchQuery) -> tuple[list[Product], int]:
    conditions: list[Any] = [Product.active.is_(True)]
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

    total = await session.scalar(sa.select(sa.func.count()).select_from(Product).where(*conditions))
    order: list[Any]
    if query.sort == "relevance" and ts_query is not None:
        order = [sa.func.ts_rank(Product.search_vector, ts_query).desc()]
    else:
        orders: dict[str, list[Any]] = {
            "price": [Product.price.asc()],
            "-price": [Product.price.desc()],
            "name": [Product.name.asc()],
            "-name": [Product.name.desc()],
        }
        order = orders.get(query.sort, [Product.created_at.desc()])
    rows = await session.scalars(
        sa.select(Product)
        .where(*conditions)
        .order_by(*order, Product.id)  # the id makes pages disjoint and complete
        .offset((query.page - 1) * query.page_size)
        .limit(query.page_size)
    )
    return list(rows), int(total or 0)


async def list_categories(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.execute(
        sa.select(Category.slug, Category.name, sa.func.count(Product.id))
        .select_from(Category)
        .outerjoin(Product, sa.and_(Product.category == Category.slug, Product.active.is_(True)))
        .group_by(Category.slug, Category.name)
        .order_by(Category.slug)
    )
    return [(slug, name, count) for slug, name, count in rows]
