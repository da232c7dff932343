"""Request and response bodies of product_service (camelCase on the wire, money as strings)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, Field, HttpUrl, model_validator

from shared_core.fields import Count, Line, Money, Paragraph
from shared_events.events import CamelModel

SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CATEGORY = r"^[a-z0-9][a-z0-9-]{0,63}$"
MAX_QUANTITY = 1_000_000


def _known_currency(code: str) -> str:
    code = code.upper()
    if not re.fullmatch(r"[A-Z]{3}", code) or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("must be an ISO 4217 currency code, e.g. EUR")
    return code


Currency = Annotated[str, AfterValidator(_known_currency)]
Price = Money
Sort = Literal["relevance", "newest", "price", "-price", "name", "-name"]


class ProductFields(CamelModel):
    """What an administrator writes; PUT takes all of it, POST too (plus initial stock)."""

    sku: str = Field(pattern=SKU)
    name: Line = Field(max_length=200)
    description: Paragraph = Field(default="", max_length=10_000)
    category: str = Field(pattern=CATEGORY)
    price: Price
    currency: Currency
    active: bool = True
    image_url: HttpUrl | None = None


class ProductCreate(ProductFields):
    quantity: Count = Field(default=0, le=MAX_QUANTITY, description="initial stock")


class ProductPatch(CamelModel):
    sku: str | None = Field(default=None, pattern=SKU)
    name: Line | None = Field(default=None, max_length=200)
    description: Paragraph | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, pattern=CATEGORY)
    price: Price | None = None
    currency: Currency | None = None
    active: bool | None = None
    image_url: HttpUrl | None = None

    @model_validator(mode="after")
    def no_null_for_required_fields(self) -> ProductPatch:
        for name in self.model_fields_set:
            if name != "image_url" and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class InventoryUpdate(CamelModel):
    quantity: Count = Field(le=MAX_QUANTITY, description="the available quantity")


class ProductOut(CamelModel):
    id: uuid.UUID
    sku: str
    name: str
    description: str
    category: str
    price: Decimal
    currency: str
    active: bool
    image_url: str | None
    available_quantity: int
    created_at: datetime
    updated_at: datetime


class ProductList(CamelModel):
    items: list[ProductOut]


class ProductPage(CamelModel):
    items: list[ProductOut]
    total: int = Field(description="matches, counted up to 1,000 (see totalCapped)")
    total_capped: bool = Field(
        default=False, description="true when more than 1,000 products match: narrow the search"
    )
    page: int
    page_size: int


class CategoryOut(CamelModel):
    slug: str
    name: str
    product_count: int


class ImportError_(CamelModel):
    line: int
    sku: str | None
    reason: str


class ImportResult(CamelModel):
    received: int
    created: int
    updated: int
    rejected: int
    errors: list[ImportError_]
    errors_truncated: bool = False
    done: bool = Field(
        default=True,
        description="false on the progress lines of a streamed import, true on its last",
    )
