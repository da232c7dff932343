"""The order saga as a pure state machine: (state, input) -> (new state, what to emit).

No I/O here. The handlers and routes load an order, call :func:`decide`, store the new state
and emit the outputs as events, all in one transaction. Every input may arrive in any order
and any number of times; :func:`decide` is total and idempotent:

- PENDING waits for both StockReserved and a successful PaymentProcessed -> CONFIRMED;
  a failed reservation, a declined payment, the customer's cancel or the deadline -> CANCELLED.
- CONFIRMED -> SHIPPED by an admin, or -> CANCELLED by the customer.
- SHIPPED and CANCELLED are final: late or repeated inputs change nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from shared_core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated, Unavailable
from shared_core.fields import MAX_CART_LINES, MAX_ORDER_TOTAL
from shared_events.events import declined_in_words


class Status(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


StepState = Literal["pending", "done", "failed"]


@dataclass(frozen=True)
class Saga:
    status: Status = Status.PENDING
    stock: StepState = "pending"
    payment: StepState = "pending"
    cancel_code: str | None = None
    cancel_reason: str | None = None


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockWasReserved:
    pass


@dataclass(frozen=True)
class StockWasShort:
    reason: str


@dataclass(frozen=True)
class PaymentWasAuthorised:
    pass


@dataclass(frozen=True)
class PaymentWasDeclined:
    reason: str


@dataclass(frozen=True)
class CustomerCancelled:
    pass


@dataclass(frozen=True)
class ShopCancelled:
    """An administrator cancels the order; the customer is told ``reason``."""

    reason: str


@dataclass(frozen=True)
class DeadlinePassed:
    pass


@dataclass(frozen=True)
class AdminShipped:
    tracking_number: str


Input = (
    StockWasReserved
    | StockWasShort
    | PaymentWasAuthorised
    | PaymentWasDeclined
    | CustomerCancelled
    | ShopCancelled
    | DeadlinePassed
    | AdminShipped
)

# --- outputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirm:
    pass


@dataclass(frozen=True)
class Cancel:
    code: str
    reason: str


@dataclass(frozen=True)
class Ship:
    tracking_number: str


Output = Confirm | Cancel | Ship


class TransitionRefused(Conflict):
    """A command (cancel, ship) that the order's state does not allow (its code says which)."""


CUSTOMER_REASON = "Cancelled at your request."
DEADLINE_REASON = "We could not complete your order in time, so nothing was charged."


def _cancel(saga: Saga, code: str, reason: str) -> tuple[Saga, list[Output]]:
    cancelled = dataclasses.replace(
        saga, status=Status.CANCELLED, cancel_code=code, cancel_reason=reason
    )
    return cancelled, [Cancel(code, reason)]


def decide(saga: Saga, event: Input) -> tuple[Saga, list[Output]]:
    """The next state and what to emit. Raises TransitionRefused only for commands."""
    if isinstance(event, AdminShipped):
        if saga.status is not Status.CONFIRMED:
            raise TransitionRefused(
                f"Only a CONFIRMED order can ship; this one is {saga.status}.",
                {"status": saga.status.value},
                code="order_not_shippable",
            )
        return dataclasses.replace(saga, status=Status.SHIPPED), [Ship(event.tracking_number)]

    if isinstance(event, CustomerCancelled | ShopCancelled):
        if saga.status not in (Status.PENDING, Status.CONFIRMED):
            raise TransitionRefused(
                f"A {saga.status} order cannot be cancelled.",
                {"status": saga.status.value},
                code="order_not_cancellable",
            )
        if isinstance(event, ShopCancelled):
            return _cancel(saga, "shop", f"Cancelled by the shop: {event.reason}")
        return _cancel(saga, "customer", CUSTOMER_REASON)

    # Facts reported by other services: recorded whatever the status, acted on only while
    # the order is PENDING.
    if isinstance(event, StockWasReserved):
        saga = dataclasses.replace(saga, stock="done") if saga.stock == "pending" else saga
    elif isinstance(event, StockWasShort):
        saga = dataclasses.replace(saga, stock="failed") if saga.stock == "pending" else saga
    elif isinstance(event, PaymentWasAuthorised):
        saga = dataclasses.replace(saga, payment="done") if saga.payment == "pending" else saga
    elif isinstance(event, PaymentWasDeclined):
        saga = dataclasses.replace(saga, payment="failed") if saga.payment == "pending" else saga

    if saga.status is not Status.PENDING:
        return saga, []
    if isinstance(event, StockWasShort) and saga.stock == "failed":
        return _cancel(saga, "out_of_stock", event.reason)
    if isinstance(event, PaymentWasDeclined) and saga.payment == "failed":
        return _cancel(saga, "payment_declined", event.reason)
    if isinstance(event, DeadlinePassed):
        return _cancel(saga, "deadline", DEADLINE_REASON)
    if saga.stock == "done" and saga.payment == "done":
        return dataclasses.replace(saga, status=Status.CONFIRMED), [Confirm()]
    return saga, []


def payment_declined_reason(decline_code: str | None, provider_reason: str | None) -> str:
    return f"Payment declined: {declined_in_words(decline_code, provider_reason)}."


def out_of_stock_reason(short: list[tuple[str, int, int | None]]) -> str:
    """short: (product name, quantity asked, quantity available)."""
    parts = [
        f"{name} ({asked} ordered, {available if available is not None else 'none'} left)"
        for name, asked, available in short
    ]
    return "Out of stock: " + "; ".join(parts) + "."


# --- placing an order --------------------------------------------------------------------

# A key means one request for this long; after it, the customer may use it for a new order.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


class OrderNotFound(NotFound):
    code = "order_not_found"


class NotTheCustomer(Forbidden):
    """Only the customer who placed an order may cancel it."""


class ReasonRequired(Invalid):
    """The shop cancels a customer's order only with a reason the customer is told."""

    code = "reason_required"


class AccountErased(Unauthenticated):
    code = "token_revoked"


class CartEmpty(Conflict):
    code = "cart_empty"


class ProductInactive(Conflict):
    code = "product_inactive"


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"


class OrderLimit(Invalid):
    code = "order_limit"


class IdempotencyKeyReused(Invalid):
    code = "idempotency_key_reused"


class PricingUnavailable(Unavailable):
    code = "dependency_unavailable"

    def __init__(self, peer: str) -> None:
        super().__init__(
            f"The order cannot be priced right now ({peer} is unavailable). Try again shortly.",
            {"peer": peer},
        )


@dataclass(frozen=True)
class Line:
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Priced:
    lines: list[Line]
    currency: str
    total: Decimal


def price(cart_items: list[dict[str, Any]]) -> Priced:
    """An order's lines from the customer's cart as cart_service priced it just now.

    Refused: an empty cart, a line priced only from stale data (product_service is down), a
    product no longer sold, mixed currencies, more lines or a higher total than allowed."""
    if not cart_items:
        raise CartEmpty("The cart is empty.")
    if any(item["stale"] for item in cart_items):
        raise PricingUnavailable("product_service")
    for item in cart_items:
        if not item["active"]:
            raise ProductInactive(
                f"{item['name']} is no longer sold; remove it from the cart.",
                {"productId": item["productId"]},
            )
    currencies = {item["currency"] for item in cart_items}
    if len(currencies) != 1:
        raise CurrencyMismatch("The cart mixes currencies.")
    currency = currencies.pop()
    lines = [
        Line(
            product_id=uuid.UUID(item["productId"]),
            name=item["name"],
            quantity=int(item["quantity"]),
            unit_price=Decimal(item["unitPrice"]),
        )
        for item in cart_items
    ]
    total = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    if len(lines) > MAX_CART_LINES or total > MAX_ORDER_TOTAL:
        raise OrderLimit(
            f"An order has at most {MAX_CART_LINES} lines and a total of at most "
            f"{MAX_ORDER_TOTAL} {currency}.",
            {"maxLines": MAX_CART_LINES, "maxTotal": str(MAX_ORDER_TOTAL)},
        )
    return Priced(lines=lines, currency=currency, total=total)


def request_fingerprint(body: dict[str, Any]) -> str:
    """What identifies a request's body, whatever the order of its keys."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def key_expired(first_used_at: datetime, now: datetime) -> bool:
    return first_used_at < now - IDEMPOTENCY_KEY_TTL


def check_same_request(order_id: uuid.UUID, stored: str | None, fingerprint: str) -> None:
    """The same key again is the same request (its first answer again), or a mistake.

    ``stored`` is None for an order placed before fingerprints were kept: taken as the same."""
    if stored not in (None, fingerprint):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request; use a new key.",
            {"orderId": str(order_id)},
        )
