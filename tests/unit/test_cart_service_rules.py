"""cart_service's rules: what a cart costs, what a change must pass, and the limits."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from cart_service import domain
from cart_service.domain import ProductInfo
from shared_core.errors import Conflict, Invalid, NotFound, Unavailable
from shared_core.fields import MAX_CART_LINES, MAX_LINE_QUANTITY


def product(
    name: str = "Teapot",
    price: str = "19.99",
    currency: str = "EUR",
    *,
    active: bool = True,
    available: int = 10,
    stale: bool = False,
) -> ProductInfo:
    return ProductInfo(
        product_id=uuid.uuid4(),
        name=name,
        price=Decimal(price),
        currency=currency,
        active=active,
        available_quantity=available,
        stale=stale,
    )


def by_id(*products: ProductInfo) -> dict[uuid.UUID, ProductInfo]:
    return {p.product_id: p for p in products}


# Pricing


def test_totals_are_exact_decimals_over_every_line():
    teapot, cup = product("Teapot", "19.99"), product("Cup", "0.10")
    cart = domain.price_cart({teapot.product_id: 3, cup.product_id: 3}, by_id(teapot, cup))
    lines = {line.product_id: line for line in cart.items}
    assert lines[teapot.product_id].line_total == Decimal("59.97")
    assert lines[cup.product_id].line_total == Decimal("0.30")
    assert cart.total == Decimal("60.27")
    assert str(cart.total) == "60.27"  # no float on the way
    assert (cart.item_count, cart.currency, cart.stale) == (6, "EUR", False)


def test_lines_are_sorted_by_name():
    names = ["Whisk", "apron", "Bowl", "Apron"]
    items = [product(name) for name in names]
    cart = domain.price_cart({p.product_id: 1 for p in items}, by_id(*items))
    assert [line.name for line in cart.items] == sorted(names)


def test_a_product_no_longer_sold_is_shown_but_not_paid_for():
    lamp = product("Lamp", "30.00", active=False)
    mug = product("Mug", "4.50")
    cart = domain.price_cart({lamp.product_id: 2, mug.product_id: 3}, by_id(lamp, mug))
    assert [(line.name, line.active) for line in cart.items] == [("Lamp", False), ("Mug", True)]
    assert cart.total == Decimal("13.50")
    assert cart.item_count == 3
    assert cart.currency == "EUR"


def test_a_cart_of_inactive_lines_only_has_nothing_to_pay_and_no_currency():
    lamp = product("Lamp", "30.00", "USD", active=False)
    cart = domain.price_cart({lamp.product_id: 2}, by_id(lamp))
    assert len(cart.items) == 1
    assert (cart.total, cart.item_count, cart.currency) == (Decimal("0.00"), 0, None)


def test_the_currency_is_that_of_the_first_payable_line_by_name():
    retired = product("Anvil", "5.00", "USD", active=False)
    kettle = product("Kettle", "25.00", "EUR")
    cart = domain.price_cart({retired.product_id: 1, kettle.product_id: 1}, by_id(retired, kettle))
    assert cart.currency == "EUR"


def test_an_empty_cart_costs_nothing():
    cart = domain.price_cart({}, {})
    assert (cart.items, cart.total, cart.item_count, cart.currency, cart.stale) == (
        [],
        Decimal("0.00"),
        0,
        None,
        False,
    )
    assert str(cart.total) == "0.00"


def test_one_line_priced_from_last_known_data_makes_the_cart_stale():
    fresh, old = product("Fresh"), product("Old", stale=True)
    cart = domain.price_cart({fresh.product_id: 1, old.product_id: 1}, by_id(fresh, old))
    assert cart.stale is True
    assert [line.stale for line in cart.items] == [False, True]
    only_fresh = domain.price_cart({fresh.product_id: 1}, by_id(fresh))
    assert only_fresh.stale is False


def test_a_stale_inactive_line_still_marks_the_cart_stale():
    old = product("Old", active=False, stale=True)
    assert domain.price_cart({old.product_id: 1}, by_id(old)).stale is True


def test_lines_whose_product_is_gone_leave_the_cart_and_are_not_priced():
    kept = product("Kept", "2.00")
    gone = uuid.uuid4()
    quantities = {kept.product_id: 2, gone: 5}
    products = by_id(kept)
    assert domain.gone_lines(quantities, products) == [gone]
    cart = domain.price_cart(quantities, products)
    assert [line.product_id for line in cart.items] == [kept.product_id]
    assert (cart.total, cart.item_count) == (Decimal("4.00"), 2)
    assert domain.gone_lines({kept.product_id: 1}, products) == []


# Product service down


def test_last_known_data_answers_when_every_product_was_seen():
    a, b = product("A", stale=True), product("B", stale=True)
    assert domain.last_known([a.product_id, b.product_id], by_id(a, b)) == by_id(a, b)


def test_a_product_never_seen_cannot_be_answered_while_product_service_is_down():
    seen = product("Seen", stale=True)
    with pytest.raises(domain.ProductDataUnavailable) as refused:
        domain.last_known([seen.product_id, uuid.uuid4()], by_id(seen))
    assert isinstance(refused.value, Unavailable)
    assert refused.value.code == "product_service_unavailable"
    assert refused.value.message == "Product data is unavailable right now. Try again shortly."


# Checks before a change


def test_a_sold_product_in_the_carts_currency_may_be_added():
    kettle, mug = product("Kettle"), product("Mug")
    products = by_id(kettle, mug)
    assert domain.check_change(kettle.product_id, products, [mug.product_id]) is kettle
    assert domain.check_change(kettle.product_id, products, []) is kettle


def test_an_unknown_product_is_not_found():
    with pytest.raises(domain.ProductNotFound) as refused:
        domain.check_change(uuid.uuid4(), {}, [])
    assert isinstance(refused.value, NotFound)
    assert (refused.value.code, refused.value.message) == (
        "product_not_found",
        "No product with this id.",
    )


def test_a_product_no_longer_sold_cannot_be_added():
    lamp = product("Lamp", active=False)
    with pytest.raises(domain.ProductInactive) as refused:
        domain.check_change(lamp.product_id, by_id(lamp), [])
    assert isinstance(refused.value, Conflict)
    assert (refused.value.code, refused.value.message) == (
        "product_inactive",
        "Lamp is no longer sold.",
    )


def test_a_product_in_another_currency_than_the_cart_is_refused():
    kettle = product("Kettle", currency="EUR")
    dollars = product("Lamp", currency="USD")
    with pytest.raises(domain.CurrencyMismatch) as refused:
        domain.check_change(dollars.product_id, by_id(kettle, dollars), [kettle.product_id])
    assert isinstance(refused.value, Conflict)
    assert refused.value.code == "currency_mismatch"
    assert refused.value.message == "The cart is in EUR; Lamp is priced in USD."
    assert refused.value.details == {"cartCurrency": "EUR", "productCurrency": "USD"}


def test_the_line_itself_and_lines_without_data_do_not_set_the_currency():
    dollars = product("Lamp", currency="USD")
    gone = uuid.uuid4()
    # Setting the quantity of the only line: nothing else to agree with.
    in_cart = [dollars.product_id, gone]
    assert domain.check_change(dollars.product_id, by_id(dollars), in_cart) is dollars


# The limits, as the atomic change answers them


def test_a_new_quantity_passes_through():
    kettle = product("Kettle")
    assert domain.check_outcome(4, 1, kettle) == 4


def test_past_the_quantity_per_line_is_refused_with_what_is_in_the_cart():
    kettle = product("Kettle")
    with pytest.raises(domain.QuantityLimit) as refused:
        domain.check_outcome(domain.QUANTITY_LIMIT, MAX_LINE_QUANTITY, kettle)
    assert isinstance(refused.value, Invalid)
    assert refused.value.code == "quantity_limit"
    assert refused.value.message == (
        f"At most {MAX_LINE_QUANTITY} of one product per cart"
        f" ({MAX_LINE_QUANTITY} already in the cart)."
    )
    assert refused.value.details == {"max": MAX_LINE_QUANTITY, "inCart": MAX_LINE_QUANTITY}


def test_a_new_line_in_a_full_cart_is_refused():
    with pytest.raises(domain.CartFull) as refused:
        domain.check_outcome(domain.CART_FULL, 0, product())
    assert isinstance(refused.value, Invalid)
    assert refused.value.code == "cart_full"
    assert refused.value.message == f"A cart holds at most {MAX_CART_LINES} different products."
    assert refused.value.details == {"maxLines": MAX_CART_LINES}


def test_more_than_the_stock_is_refused_with_what_is_available():
    kettle = product("Kettle", available=3)
    with pytest.raises(domain.OutOfStock) as refused:
        domain.check_outcome(domain.OUT_OF_STOCK, 1, kettle)
    assert isinstance(refused.value, Conflict)
    assert refused.value.code == "out_of_stock"
    assert refused.value.message == "Only 3 of Kettle available."
    assert refused.value.details == {"productId": str(kettle.product_id), "available": 3}
