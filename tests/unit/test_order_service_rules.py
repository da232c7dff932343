"""order_service's rules for placing an order: pricing from the cart, limits, one request per
Idempotency-Key. (The saga's state machine: test_saga.py.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from order_service.domain import (
    IDEMPOTENCY_KEY_TTL,
    CartEmpty,
    CurrencyMismatch,
    IdempotencyKeyReused,
    OrderLimit,
    PricingUnavailable,
    ProductInactive,
    check_same_request,
    key_expired,
    price,
    request_fingerprint,
)
from shared_core.fields import MAX_CART_LINES, MAX_ORDER_TOTAL


def item(**fields: Any) -> dict[str, Any]:
    return {
        "productId": str(uuid.uuid4()),
        "name": "Kettle",
        "quantity": 2,
        "unitPrice": "19.99",
        "currency": "EUR",
        "active": True,
        "stale": False,
    } | fields


def test_an_order_is_priced_exactly_from_the_carts_lines():
    priced = price([item(), item(name="Cup", quantity=3, unitPrice="0.10")])
    assert priced.total == Decimal("40.28") and priced.currency == "EUR"
    assert [(line.name, line.quantity, line.unit_price) for line in priced.lines] == [
        ("Kettle", 2, Decimal("19.99")),
        ("Cup", 3, Decimal("0.10")),
    ]


@pytest.mark.parametrize(
    ("items", "refusal", "code"),
    [
        ([], CartEmpty, "cart_empty"),
        ([item(), item(stale=True)], PricingUnavailable, "dependency_unavailable"),
        ([item(), item(active=False)], ProductInactive, "product_inactive"),
        ([item(), item(currency="USD")], CurrencyMismatch, "currency_mismatch"),
        ([item() for _ in range(MAX_CART_LINES + 1)], OrderLimit, "order_limit"),
        ([item(quantity=99, unitPrice="1000000.00")] * 2, OrderLimit, "order_limit"),
    ],
)
def test_a_cart_that_cannot_be_ordered_is_refused_with_its_reason(items, refusal, code):
    with pytest.raises(refusal) as refused:
        price(items)
    assert refused.value.code == code


def test_the_limits_themselves_are_allowed():
    at_limit = [item(quantity=1, unitPrice="1.00") for _ in range(MAX_CART_LINES)]
    assert len(price(at_limit).lines) == MAX_CART_LINES
    dearest = item(quantity=1, unitPrice=str(MAX_ORDER_TOTAL))
    assert price([dearest]).total == MAX_ORDER_TOTAL


def test_an_inactive_product_is_named_in_the_refusal():
    retired = item(name="Old Kettle", active=False)
    with pytest.raises(ProductInactive) as refused:
        price([retired])
    assert "Old Kettle" in refused.value.message
    assert refused.value.details == {"productId": retired["productId"]}


def test_the_fingerprint_is_the_bodys_content_not_its_key_order():
    one = {"paymentMethodId": "pm_card_visa", "shippingAddress": {"city": "Berlin", "line1": "1"}}
    same = {"shippingAddress": {"line1": "1", "city": "Berlin"}, "paymentMethodId": "pm_card_visa"}
    other = {"paymentMethodId": "pm_card_visa", "shippingAddress": {"city": "Bonn", "line1": "1"}}
    assert request_fingerprint(one) == request_fingerprint(same) != request_fingerprint(other)


def test_a_key_is_one_request_until_it_expires():
    order_id = uuid.uuid4()
    check_same_request(order_id, "abc", "abc")
    check_same_request(order_id, None, "abc")  # placed before fingerprints were kept
    with pytest.raises(IdempotencyKeyReused) as reused:
        check_same_request(order_id, "abc", "xyz")
    assert reused.value.details == {"orderId": str(order_id)}
    now = datetime.now(UTC)
    assert not key_expired(now - IDEMPOTENCY_KEY_TTL + timedelta(seconds=1), now)
    assert key_expired(now - IDEMPOTENCY_KEY_TTL - timedelta(seconds=1), now)
