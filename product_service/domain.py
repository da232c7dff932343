"""Catalog and stock rules, on plain values: no database, no cache, no HTTP.

Stock of a product is three counts: ``available`` (may be sold), ``reserved`` (held by
orders not yet shipped) and ``sold``. An order's reservation moves stock between them:
reserve (available -> reserved, all lines or none), release on cancel (reserved ->
available), sell on shipping (reserved -> sold).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from shared_core.errors import Conflict, Invalid, NotFound
from shared_events.events import StockLine


class ProductNotFound(NotFound):
    code = "product_not_found"

    def __init__(self) -> None:
        super().__init__("No product with this id.")


class SkuTaken(Conflict):
    code = "sku_taken"

    def __init__(self, sku: str) -> None:
        super().__init__(f"Another product already has SKU {sku!r}.", {"sku": sku})


class ReservationMissing(Conflict):
    """An order shipped whose stock was never reserved."""

    code = "reservation_missing"


def category_name(slug: str) -> str:
    """The name a category gets when a product first uses its slug: "garden-tools" is
    "Garden tools"."""
    return slug.replace("-", " ").capitalize()


# Catalog search.


# At a million products, counting the 200,000 products that share a common word, ranking them
# all, or skipping to the 100,000th costs a random read of each (docs/benchmarks.md, "make
# bench-scale"): counts stop here (``totalCapped``), relevance ranks the first this-many
# matches, and pages reach this far, as large shops do. Words and filters find the rest.
MATCH_CAP = 1_000


@dataclass(frozen=True)
class SearchQuery:
    search: str | None
    category: str | None
    min_price: Decimal | None
    max_price: Decimal | None
    sort: str
    page: int
    page_size: int
    include_inactive: bool = False  # administrators: products taken off sale too

    def cache_params(self) -> dict[str, Any]:
        return {k: (str(v) if v is not None else None) for k, v in self.__dict__.items()}


def search_query(
    search: str | None,
    category: str | None,
    min_price: Decimal | None,
    max_price: Decimal | None,
    sort: str | None,
    page: int,
    page_size: int,
    include_inactive: bool = False,
) -> SearchQuery:
    """A blank search is no search; without a sort, results come by relevance when there
    are search words and newest first otherwise."""
    if min_price is not None and max_price is not None and min_price > max_price:
        raise Invalid("minPrice is greater than maxPrice.")
    if page * page_size > MATCH_CAP:
        raise Invalid(
            f"Pages reach the {MATCH_CAP:,}th product at most (page x pageSize <= {MATCH_CAP:,}); "
            "narrow the search with words or filters."
        )
    words = search.strip() if search else None
    return SearchQuery(
        search=words or None,
        category=category,
        min_price=min_price,
        max_price=max_price,
        sort=sort or ("relevance" if words else "newest"),
        page=page,
        page_size=page_size,
        include_inactive=include_inactive,
    )


# Stock.

# A reservation's status: "new" only inside the transaction that created its row; "cancelled"
# is the tombstone of an order cancelled before it was seen.
NEW, RESERVED, FAILED, RELEASED, SOLD, CANCELLED = (
    "new",
    "reserved",
    "failed",
    "released",
    "sold",
    "cancelled",
)


@dataclass(frozen=True)
class Stock:
    available: int
    reserved: int = 0
    sold: int = 0
    active: bool = True


def requested(lines: Iterable[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    """The quantity asked of each product, lines of one product added up, in the order the
    products first appear."""
    wanted: dict[uuid.UUID, int] = {}
    for product_id, quantity in lines:
        wanted[product_id] = wanted.get(product_id, 0) + quantity
    return wanted


def shortages(wanted: Mapping[uuid.UUID, int], stock: Mapping[uuid.UUID, Stock]) -> list[StockLine]:
    """The lines that cannot be reserved, each with what is available: the product is
    unknown (0 available), no longer sold, or has less than asked. One short line fails
    the whole order."""
    short = []
    for product_id, quantity in wanted.items():
        found = stock.get(product_id)
        if found is None or not found.active or found.available < quantity:
            available = found.available if found is not None else 0
            short.append(StockLine(product_id=product_id, quantity=quantity, available=available))
    return short


def reserve(stock: Stock, quantity: int) -> Stock:
    return replace(stock, available=stock.available - quantity, reserved=stock.reserved + quantity)


def release(stock: Stock, quantity: int) -> Stock:
    return replace(stock, available=stock.available + quantity, reserved=stock.reserved - quantity)


def sell(stock: Stock, quantity: int) -> Stock:
    return replace(stock, reserved=stock.reserved - quantity, sold=stock.sold + quantity)


def reservation_lines(wanted: Mapping[uuid.UUID, int]) -> list[dict[str, Any]]:
    """What a reservation stores of its lines (JSON)."""
    return [{"productId": str(pid), "quantity": qty} for pid, qty in wanted.items()]


def held(lines: Iterable[Mapping[str, Any]]) -> dict[uuid.UUID, int]:
    """The quantities a reservation's stored lines hold, by product."""
    return {uuid.UUID(str(line["productId"])): int(str(line["quantity"])) for line in lines}


def may_reserve(status: str) -> bool:
    """Only a reservation just created reserves: any other status is a duplicate
    OrderCreated, or the order was cancelled first."""
    return status == NEW


def status_after_cancel(status: str) -> str:
    """A cancel before the order was seen leaves the tombstone; a reservation is released;
    anything else (failed, sold, already released or cancelled) stays as it is."""
    return {NEW: CANCELLED, RESERVED: RELEASED}.get(status, status)


def status_after_shipping(status: str, order_id: uuid.UUID) -> str:
    """A reservation is sold; a repeat or a cancelled order changes nothing.

    Shipping needs a confirmed order, which needs the reservation: it cannot come first
    unless events are corrupt. Refused, so it is retried and then parked."""
    if status == NEW:
        raise ReservationMissing(f"no reservation for shipped order {order_id}")
    return SOLD if status == RESERVED else status
