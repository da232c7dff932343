"""HTTP routes of product_service: catalog reads (cached), admin writes, stock, bulk import."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from product_service import service
from product_service.cache import CatalogCache
from product_service.domain import search_query
from product_service.importer import FORMATS, Import, Unreadable, spool
from product_service.schemas import (
    CategoryOut,
    ImportResult,
    InventoryUpdate,
    ProductCreate,
    ProductFields,
    ProductList,
    ProductOut,
    ProductPage,
    ProductPatch,
    Sort,
)
from shared_core.fields import MAX_CART_LINES
from shared_runtime.auth import AdminUser, current_user
from shared_runtime.db import SessionDep
from shared_runtime.errors import ApiError

router = APIRouter(prefix="/products", tags=["products"])
JSON = "application/json"


def _cache(request: Request) -> CatalogCache:
    cache: CatalogCache = request.app.state.cache
    return cache


def _public(request: Request, body: bytes) -> Response:
    """A catalog answer that is the same for every reader, marked so the gateway may keep it
    (nginx/routes.conf: never for requests that carry a token)."""
    return Response(body, media_type=JSON, headers=request.app.state.public_headers)


def _page_json(products: list, total: int, capped: bool, page: int, page_size: int) -> bytes:
    return (
        ProductPage(
            items=[ProductOut.model_validate(p, from_attributes=True) for p in products],
            total=total,
            total_capped=capped,
            page=page,
            page_size=page_size,
        )
        .model_dump_json(by_alias=True)
        .encode()
    )


def _product_json(product: object) -> bytes:
    return (
        ProductOut.model_validate(product, from_attributes=True)
        .model_dump_json(by_alias=True)
        .encode()
    )


@router.get("", response_model=ProductPage)
async def list_products(
    request: Request,
    search: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    min_price: Annotated[Decimal | None, Query(alias="minPrice", ge=0, max_digits=12)] = None,
    max_price: Annotated[Decimal | None, Query(alias="maxPrice", ge=0, max_digits=12)] = None,
    sort: Sort | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
    include_inactive: Annotated[
        bool,
        Query(
            alias="includeInactive",
            description="Administrators only (with their token): products taken off sale too.",
        ),
    ] = False,
) -> Response:
    if include_inactive:
        user = await current_user(request, None)
        if not user.is_admin:
            raise ApiError(403, "forbidden", "includeInactive is for administrators.")
    query = search_query(
        search, category, min_price, max_price, sort, page, page_size, include_inactive
    )
    if include_inactive:  # the back office's view: never cached, never public
        async with request.app.state.sessionmaker() as session:
            products, total, capped = await service.search_products(session, query)
        return Response(_page_json(products, total, capped, page, page_size), media_type=JSON)
    cache = _cache(request)
    key, cached = await cache.get_page(query.cache_params())
    if cached is not None:
        return _public(request, cached)
    # A session only on a miss: a cache hit never touches the database pool.
    async with request.app.state.sessionmaker() as session:
        products, total, capped = await service.search_products(session, query)
    body = _page_json(products, total, capped, page, page_size)
    await cache.set(key, body)
    return _public(request, body)


@router.get("/categories", response_model=list[CategoryOut])
async def list_categories(session: SessionDep) -> list[CategoryOut]:
    return [
        CategoryOut(slug=slug, name=name, product_count=count)
        for slug, name, count in await service.list_categories(session)
    ]


@router.get("/lookup", response_model=ProductList)
async def lookup_products(
    request: Request,
    ids: Annotated[list[uuid.UUID], Query(min_length=1, max_length=MAX_CART_LINES)],
) -> Response:
    """Several products by id in one call, inactive ones included (a cart prices all its lines
    with one). An id that names no product is left out of ``items``."""
    wanted = list(dict.fromkeys(ids))
    cache = _cache(request)
    cached = await cache.get_products(wanted)
    missing = [pid for pid, (_, body) in zip(wanted, cached, strict=True) if body is None]
    fresh: dict[uuid.UUID, bytes] = {}
    if missing:
        async with request.app.state.sessionmaker() as session:
            fresh = {p.id: _product_json(p) for p in await service.get_products(session, missing)}
        keys = dict(zip(wanted, (key for key, _ in cached), strict=True))
        await cache.set_many([(keys[pid], body) for pid, body in fresh.items()])
    bodies = [body or fresh.get(pid) for pid, (_, body) in zip(wanted, cached, strict=True)]
    return _public(request, b'{"items":[' + b",".join(b for b in bodies if b is not None) + b"]}")


@router.get("/{product_id}", response_model=ProductOut)
async def get_product(product_id: uuid.UUID, request: Request) -> Response:
    """One product, inactive ones included (``active: false``): carts and orders refer to them."""
    cache = _cache(request)
    key, cached = await cache.get_product(product_id)
    if cached is not None:
        return _public(request, cached)
    async with request.app.state.sessionmaker() as session:
        body = _product_json(await service.get_product(session, product_id))
    await cache.set(key, body)
    return _public(request, body)


@router.post("", status_code=201, response_model=ProductOut)
async def create_product(
    body: ProductCreate, request: Request, session: SessionDep, _: AdminUser
) -> ProductOut:
    product = await service.create_product(session, _cache(request), body)
    return ProductOut.model_validate(product, from_attributes=True)


@router.put("/{product_id}", response_model=ProductOut)
async def replace_product(
    product_id: uuid.UUID, body: ProductFields, request: Request, session: SessionDep, _: AdminUser
) -> ProductOut:
    product = await service.update_product(session, _cache(request), product_id, body)
    return ProductOut.model_validate(product, from_attributes=True)


@router.patch("/{product_id}", response_model=ProductOut)
async def patch_product(
    product_id: uuid.UUID, body: ProductPatch, request: Request, session: SessionDep, _: AdminUser
) -> ProductOut:
    product = await service.update_product(session, _cache(request), product_id, body)
    return ProductOut.model_validate(product, from_attributes=True)


@router.delete("/{product_id}", status_code=204)
async def delete_product(
    product_id: uuid.UUID, request: Request, session: SessionDep, _: AdminUser
) -> Response:
    await service.deactivate_product(session, _cache(request), product_id)
    return Response(status_code=204)


@router.put("/{product_id}/inventory", response_model=ProductOut)
async def set_inventory(
    product_id: uuid.UUID,
    body: InventoryUpdate,
    request: Request,
    session: SessionDep,
    _: AdminUser,
) -> ProductOut:
    product = await service.set_inventory(session, _cache(request), product_id, body.quantity)
    return ProductOut.model_validate(product, from_attributes=True)


@router.post(
    "/import",
    response_model=ImportResult,
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
            "required": True,
        }
    },
    responses={
        200: {
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"received":1000,...,"done":false}\n...',
                }
            }
        },
        422: {"description": "the file cannot be read at all (``unreadable_file``)"},
    },
)
async def import_products(request: Request, _: AdminUser) -> Response:
    """CSV (header: sku,name,description,category,price,currency,quantity,active,imageUrl)
    or JSON lines with the same fields. Every row is imported or rejected on its own; the
    answer counts them (``received = created + updated + rejected``) and gives each rejected
    row's line and reason. With ``Accept: application/x-ndjson`` the answer is streamed: a
    line per batch of rows as it is done (its counts so far and that batch's errors), then
    the final result (``done: true``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = FORMATS.get(content_type)
    if fmt is None:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send text/csv or application/x-ndjson.",
            {"accepted": sorted(FORMATS)},
        )
    settings = request.app.state.settings
    try:
        file = await spool(request.stream(), settings.import_max_bytes)
    except ValueError as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from exc
    job = Import(request.app.state.sessionmaker, file, fmt)
    try:
        await job.check()
    except Unreadable as exc:
        file.close()
        raise ApiError(422, "unreadable_file", f"The file cannot be imported: {exc}.") from exc
    cache = _cache(request)

    async def results() -> AsyncIterator[ImportResult]:
        with file:
            async for result in job.progress():
                if result.done and (result.created or result.updated):
                    await cache.everything_changed()
                yield result

    if "application/x-ndjson" in request.headers.get("accept", ""):
        lines = (r.model_dump_json(by_alias=True).encode() + b"\n" async for r in results())
        # X-Accel-Buffering: the gateway passes each line on as it comes.
        return StreamingResponse(
            lines, media_type="application/x-ndjson", headers={"X-Accel-Buffering": "no"}
        )
    final = [r async for r in results()][-1]
    return Response(final.model_dump_json(by_alias=True), media_type=JSON)
