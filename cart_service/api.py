"""HTTP routes of cart_service: the caller's own cart."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from cart_service.schemas import AddItem, Cart, SetQuantity
from cart_service.service import Carts
from shared_runtime.auth import CurrentUser

router = APIRouter(prefix="/cart", tags=["cart"])


def _carts(request: Request) -> Carts:
    carts: Carts = request.app.state.carts
    return carts


@router.get("", response_model=Cart)
async def get_cart(request: Request, user: CurrentUser) -> Cart:
    return await _carts(request).get(user.user_id)


@router.post("/items", response_model=Cart, status_code=201)
async def add_item(body: AddItem, request: Request, user: CurrentUser) -> Cart:
    carts = _carts(request)
    known = await carts.add(user.user_id, body.product_id, body.quantity)
    return await carts.get(user.user_id, known)


@router.put("/items/{product_id}", response_model=Cart)
async def set_item(
    product_id: uuid.UUID, body: SetQuantity, request: Request, user: CurrentUser
) -> Cart:
    carts = _carts(request)
    known = await carts.set(user.user_id, product_id, body.quantity)
    return await carts.get(user.user_id, known)


@router.delete("/items/{product_id}", response_model=Cart)
async def remove_item(product_id: uuid.UUID, request: Request, user: CurrentUser) -> Cart:
    carts = _carts(request)
    await carts.remove(user.user_id, product_id)
    return await carts.get(user.user_id)


@router.delete("", status_code=204)
async def clear_cart(request: Request, user: CurrentUser) -> Response:
    await _carts(request).clear(user.user_id)
    return Response(status_code=204)
