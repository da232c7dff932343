"""Request and response bodies of order_service."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, Field

from order_service.domain import Status
from shared_core.fields import Line, OptionalLine, PersonName
from shared_events.events import CamelModel


def _country(code: str) -> str:
    code = code.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. DE")
    return code


class ShippingAddress(CamelModel):
    full_name: PersonName = Field(max_length=200)
    line1: Line = Field(max_length=200)
    line2: OptionalLine = Field(default=None, max_length=200)
    city: Line = Field(max_length=100)
    postal_code: Line = Field(max_length=20)
    country: Annotated[str, AfterValidator(_country)]


class PlaceOrder(CamelModel):
    shipping_address: ShippingAddress
    payment_method_id: str = Field(
        pattern=r"^pm_[A-Za-z0-9_]{1,100}$",
        description="a Stripe payment method id, e.g. pm_card_visa (never card data)",
    )


class CancelOrder(CamelModel):
    reason: Line | None = Field(
        default=None,
        max_length=500,
        description="An administrator's reason, told to the customer (required for them).",
    )


class SearchOrders(CamelModel):
    """What the back office searches orders by, in a body: a query string is written to the
    gateway's access log and to traces, and an e-mail must not be."""

    search: OptionalLine = Field(
        default=None,
        max_length=200,
        description="The start of an order's id, or part of the customer's e-mail.",
    )
    status: Status | None = None
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)


class ShipOrder(CamelModel):
    tracking_number: Line = Field(max_length=100, pattern=r"^[A-Za-z0-9-]+$")


class LineOut(CamelModel):
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class TimelineOut(CamelModel):
    event: str
    direction: str
    at: datetime
    details: dict[str, Any] | None


class OrderOut(CamelModel):
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    total_amount: Decimal
    currency: str
    items: list[LineOut]
    shipping_address: dict[str, Any]
    payment_method_id: str
    cancel_reason: str | None
    tracking_number: str | None
    created_at: datetime
    updated_at: datetime | None
    deadline_at: datetime
    timeline: list[TimelineOut]


class OldestPending(CamelModel):
    id: uuid.UUID
    created_at: datetime
    deadline_at: datetime


class OrdersOverview(CamelModel):
    counts: dict[str, int]
    oldest_pending: OldestPending | None


class OrderPage(CamelModel):
    items: list[OrderOut]
    total: int
    page: int
    page_size: int
