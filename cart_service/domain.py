"""The rules of a cart: what a change must pass, and what a cart costs.

A cart is a quantity per product; prices, names, currency and stock come from product_service
each time it is read (its last answer when it is down), so a price is never the cart's own.
Bounded whatever the cart: at most ``MAX_CART_LINES`` distinct products and
``MAX_LINE_QUANTITY`` of each.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from cart_service.schemas import Cart, CartLine
from shared_core.errors import Conflict, Invalid, NotFound, Unauthenticated, Unavailable
from shared_core.fields import MAX_CART_LINES, MAX_LINE_QUANTITY

# What the atomic change of a line answers instead of the new quantity when it refuses.
QUANTITY_LIMIT, CART_FULL, OUT_OF_STOCK = -1, -2, -3
# The cart holds lines of another currency (added by a change racing this one), or its
# owner's account was erased: the change is not made.
CURRENCY_MISMATCH, ACCOUNT_ERASED = -4, -5


class ProductNotFound(NotFound):
    code = "product_not_found"


class ProductInactive(Conflict):
    code = "product_inactive"


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"


class OutOfStock(Conflict):
    code = "out_of_stock"


class QuantityLimit(Invalid):
    code = "quantity_limit"


class CartFull(Invalid):
    code = "cart_full"


class AccountErased(Unauthenticated):
    code = "token_revoked"


class NotInCart(NotFound):
    code = "not_in_cart"


class ProductDataUnavailable(Unavailable):
    code = "product_service_unavailable"


@dataclass(frozen=True)
class ProductInfo:
    """What a cart needs to know of a product; ``stale`` when it is the last data seen, because
    product_service did not answer."""

    product_id: uuid.UUID
    name: str
    price: Decimal
    currency: str
    active: bool
    available_quantity: int
    stale: bool


def last_known(
    product_ids: Sequence[uuid.UUID], known: Mapping[uuid.UUID, ProductInfo]
) -> dict[uuid.UUID, ProductInfo]:
    """The last data seen, when product_service is down. A product never seen cannot be priced
    or checked, so then nothing is answered rather than part of it."""
    if any(pid not in known for pid in product_ids):
        raise ProductDataUnavailable("Product data is unavailable right now. Try again shortly.")
    return {pid: known[pid] for pid in product_ids}


def gone_lines(
    quantities: Mapping[uuid.UUID, int], products: Mapping[uuid.UUID, ProductInfo]
) -> list[uuid.UUID]:
    """Lines whose product is no longer in the catalog: they leave the cart."""
    return [pid for pid in quantities if pid not in products]


def price_cart(
    quantities: Mapping[uuid.UUID, int], products: Mapping[uuid.UUID, ProductInfo]
) -> Cart:
    """The cart as it costs now. Lines are sorted by name; a product no longer sold stays
    shown but is not paid for, so the total, item count and currency are those of active
    lines only. A line without product data is left out."""
    lines = sorted(
        (
            CartLine(
                product_id=pid,
                name=info.name,
                unit_price=info.price,
                currency=info.currency,
                quantity=quantity,
                line_total=info.price * quantity,
                active=info.active,
                available_quantity=info.available_quantity,
                stale=info.stale,
            )
            for pid, quantity in quantities.items()
            if (info := products.get(pid)) is not None
        ),
        key=lambda line: line.name,
    )
    payable = [line for line in lines if line.active]
    return Cart(
        items=lines,
        item_count=sum(line.quantity for line in payable),
        total=sum((line.line_total for line in payable), Decimal("0.00")),
        currency=payable[0].currency if payable else None,
        stale=any(line.stale for line in lines),
    )


def check_change(
    product_id: uuid.UUID,
    products: Mapping[uuid.UUID, ProductInfo],
    in_cart: Sequence[uuid.UUID],
) -> ProductInfo:
    """The product a line is to change to, if it may be in the cart: it exists, is sold, and
    is priced in the currency of the other lines (a cart is paid in one currency). The limits
    are checked by the change itself, atomically (see ``check_outcome``)."""
    info = products.get(product_id)
    if info is None:
        raise ProductNotFound("No product with this id.")
    if not info.active:
        raise ProductInactive(f"{info.name} is no longer sold.")
    other = next((products[p] for p in in_cart if p != product_id and p in products), None)
    if other is not None and other.currency != info.currency:
        raise CurrencyMismatch(
            f"The cart is in {other.currency}; {info.name} is priced in {info.currency}.",
            {"cartCurrency": other.currency, "productCurrency": info.currency},
        )
    return info


def check_outcome(outcome: int, current: int, product: ProductInfo) -> int:
    """The new quantity of a line, from what its atomic change answered; a refusal is raised.
    ``current`` is the quantity the line had before."""
    if outcome == QUANTITY_LIMIT:
        raise QuantityLimit(
            f"At most {MAX_LINE_QUANTITY} of one product per cart ({current} already in the cart).",
            {"max": MAX_LINE_QUANTITY, "inCart": current},
        )
    if outcome == CART_FULL:
        raise CartFull(
            f"A cart holds at most {MAX_CART_LINES} different products.",
            {"maxLines": MAX_CART_LINES},
        )
    if outcome == ACCOUNT_ERASED:
        raise AccountErased("This account no longer exists.")
    if outcome == CURRENCY_MISMATCH:
        raise CurrencyMismatch(
            f"The cart holds products in another currency; {product.name} is priced in "
            f"{product.currency}.",
            {"productCurrency": product.currency},
        )
    if outcome == OUT_OF_STOCK:
        raise OutOfStock(
            f"Only {product.available_quantity} of {product.name} available.",
            {"productId": str(product.product_id), "available": product.available_quantity},
        )
    return outcome
