"""Request and response bodies of cart_service."""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import Field

from shared_core.fields import MAX_LINE_QUANTITY, Quantity
from shared_events.events import CamelModel


class AddItem(CamelModel):
    product_id: uuid.UUID
    quantity: Quantity = Field(default=1, le=MAX_LINE_QUANTITY)


class SetQuantity(CamelModel):
    quantity: Quantity = Field(le=MAX_LINE_QUANTITY)


class CartLine(CamelModel):
    product_id: uuid.UUID
    name: str
    unit_price: Decimal
    currency: str
    quantity: int
    line_total: Decimal
    active: bool
    available_quantity: int
    stale: bool = Field(description="product data is the last known, product_service is down")


class Cart(CamelModel):
    items: list[CartLine]
    item_count: int
    total: Decimal
    currency: str | None
    stale: bool
