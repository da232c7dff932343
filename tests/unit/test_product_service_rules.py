"""product_service's rules: search queries, categories, all-or-nothing reservation, and what
each step of an order (reserve, release, sell) does to stock and to the reservation."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from product_service.domain import (
    CANCELLED,
    FAILED,
    NEW,
    RELEASED,
    RESERVED,
    SOLD,
    ProductNotFound,
    ReservationMissing,
    SearchQuery,
    SkuTaken,
    Stock,
    category_name,
    held,
    may_reserve,
    release,
    requested,
    reservation_lines,
    reserve,
    search_query,
    sell,
    shortages,
    status_after_cancel,
    status_after_shipping,
)
from shared_core.errors import Conflict, Invalid, NotFound

A, B, C = sorted(uuid.uuid4() for _ in range(3))


def query(
    search: str | None = None,
    min_price: str | None = None,
    max_price: str | None = None,
    sort: str | None = None,
    page: int = 1,
) -> SearchQuery:
    return search_query(
        search,
        None,
        Decimal(min_price) if min_price is not None else None,
        Decimal(max_price) if max_price is not None else None,
        sort,
        page,
        20,
    )


# Search.


def test_a_price_range_upside_down_is_refused():
    with pytest.raises(Invalid) as refused:
        query(min_price="50", max_price="10")
    assert refused.value.code == "validation_error"
    assert refused.value.message == "minPrice is greater than maxPrice."
    assert refused.value.details is None


def test_pages_reach_the_thousandth_product_and_no_further():
    assert query(page=50).page == 50  # 50 x 20 = 1,000
    with pytest.raises(Invalid) as refused:
        query(page=51)
    assert refused.value.code == "validation_error"
    assert "1,000th product at most" in refused.value.message


def test_a_one_price_range_and_open_ends_are_allowed():
    same = query(min_price="10", max_price="10")
    assert (same.min_price, same.max_price) == (Decimal("10"), Decimal("10"))
    assert query(min_price="50").max_price is None


def test_search_words_sort_by_relevance_and_are_trimmed():
    found = query(search="  kettle  ")
    assert (found.search, found.sort) == ("kettle", "relevance")


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_blank_search_is_no_search_and_lists_newest_first(blank):
    listed = query(search=blank)
    assert (listed.search, listed.sort) == (None, "newest")


def test_a_sort_asked_for_wins_over_the_default():
    assert query(search="mug", sort="-price").sort == "-price"


def test_equal_queries_give_equal_cache_params_and_different_ones_differ():
    one = query(search="mug", min_price="1.50")
    same = query(search=" mug ", min_price="1.50")
    other = query(search="mug", page=2)
    assert one.cache_params() == same.cache_params()
    assert one.cache_params() != other.cache_params()
    assert one.cache_params()["min_price"] == "1.50"
    assert one.cache_params()["category"] is None


@pytest.mark.parametrize(
    ("slug", "name"),
    [("kitchen", "Kitchen"), ("garden-tools", "Garden tools"), ("usb-c-cables", "Usb c cables")],
)
def test_a_category_is_named_from_its_slug(slug, name):
    assert category_name(slug) == name


# Errors a client sees.


def test_catalog_errors_keep_their_codes_messages_and_details():
    missing = ProductNotFound()
    assert isinstance(missing, NotFound)
    assert (missing.code, missing.message, missing.details) == (
        "product_not_found",
        "No product with this id.",
        None,
    )
    taken = SkuTaken("MUG-1")
    assert isinstance(taken, Conflict)
    assert (taken.code, taken.message, taken.details) == (
        "sku_taken",
        "Another product already has SKU 'MUG-1'.",
        {"sku": "MUG-1"},
    )


# Reservation: all lines or none.


def test_lines_of_one_product_are_added_up_in_first_seen_order():
    wanted = requested([(B, 1), (A, 2), (B, 3)])
    assert wanted == {B: 4, A: 2}
    assert list(wanted) == [B, A]


def test_enough_of_every_active_product_leaves_nothing_short():
    stock = {A: Stock(available=2), B: Stock(available=5)}
    assert shortages({A: 2, B: 1}, stock) == []


def test_lines_added_up_can_be_short_where_each_line_alone_is_not():
    short = shortages(requested([(A, 2), (A, 2)]), {A: Stock(available=3)})
    assert [(s.product_id, s.quantity, s.available) for s in short] == [(A, 4, 3)]


def test_every_short_line_is_reported_with_what_is_available():
    stock = {A: Stock(available=1), B: Stock(available=9, active=False), C: Stock(available=4)}
    unknown = uuid.uuid4()
    short = shortages({A: 2, B: 1, C: 4, unknown: 1}, stock)
    assert [(s.product_id, s.quantity, s.available) for s in short] == [
        (A, 2, 1),  # less than asked
        (B, 1, 9),  # no longer sold, whatever its stock
        (unknown, 1, 0),  # not in the catalog
    ]


def test_reserving_moves_available_to_reserved():
    assert reserve(Stock(available=5, reserved=1, sold=2), 3) == Stock(
        available=2, reserved=4, sold=2
    )


def test_releasing_gives_reserved_stock_back():
    assert release(Stock(available=2, reserved=4, sold=2), 3) == Stock(
        available=5, reserved=1, sold=2
    )


def test_selling_moves_reserved_to_sold_and_leaves_available_alone():
    assert sell(Stock(available=2, reserved=4, sold=2), 3) == Stock(available=2, reserved=1, sold=5)


def test_reserve_then_release_restores_the_stock():
    before = Stock(available=7, reserved=2, sold=1)
    assert release(reserve(before, 5), 5) == before


def test_stored_lines_read_back_as_the_quantities_reserved():
    wanted = {A: 2, B: 5}
    stored = reservation_lines(wanted)
    assert stored == [{"productId": str(A), "quantity": 2}, {"productId": str(B), "quantity": 5}]
    assert held(stored) == wanted


# The order's steps, in any arrival order, each applied once.


@pytest.mark.parametrize(
    ("status", "reserves"),
    [(NEW, True), (RESERVED, False), (FAILED, False), (CANCELLED, False), (SOLD, False)],
)
def test_only_a_new_reservation_reserves(status, reserves):
    assert may_reserve(status) is reserves


@pytest.mark.parametrize(
    ("status", "after"),
    [
        (NEW, CANCELLED),  # cancelled before it was seen: the tombstone
        (RESERVED, RELEASED),
        (FAILED, FAILED),
        (RELEASED, RELEASED),
        (SOLD, SOLD),  # sold is sold
        (CANCELLED, CANCELLED),
    ],
)
def test_what_a_cancel_does_to_a_reservation(status, after):
    assert status_after_cancel(status) == after


@pytest.mark.parametrize(
    ("status", "after"),
    [(RESERVED, SOLD), (SOLD, SOLD), (RELEASED, RELEASED), (CANCELLED, CANCELLED)],
)
def test_what_shipping_does_to_a_reservation(status, after):
    assert status_after_shipping(status, uuid.uuid4()) == after


def test_shipping_an_order_never_reserved_is_refused():
    order_id = uuid.uuid4()
    with pytest.raises(ReservationMissing) as refused:
        status_after_shipping(NEW, order_id)
    assert str(order_id) in refused.value.message
