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
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


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


class TransitionRefused(Exception):
    """A command (cancel, ship) that the order's state does not allow."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
                "order_not_shippable",
                f"Only a CONFIRMED order can ship; this one is {saga.status}.",
            )
        return dataclasses.replace(saga, status=Status.SHIPPED), [Ship(event.tracking_number)]

    if isinstance(event, CustomerCancelled):
        if saga.status not in (Status.PENDING, Status.CONFIRMED):
            raise TransitionRefused(
                "order_not_cancellable",
                f"A {saga.status} order cannot be cancelled.",
            )
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


DECLINE_WORDS = {
    "generic_decline": "your card was declined",
    "card_declined": "your card was declined",
    "insufficient_funds": "your card has insufficient funds",
    "expired_card": "your card has expired",
    "incorrect_cvc": "the card's security code is incorrect",
    "invalid_payment_method": "the payment method is not valid",
    "lost_card": "your card was declined",
    "stolen_card": "your card was declined",
}


def payment_declined_reason(decline_code: str | None, provider_reason: str | None) -> str:
    words = DECLINE_WORDS.get(decline_code or "")
    if words is None:
        words = (provider_reason or "the payment was declined").rstrip(".").lower()
    return f"Payment declined: {words}."


def out_of_stock_reason(short: list[tuple[str, int, int | None]]) -> str:
    """short: (product name, quantity asked, quantity available)."""
    parts = [
        f"{name} ({asked} ordered, {available if available is not None else 'none'} left)"
        for name, asked, available in short
    ]
    return "Out of stock: " + "; ".join(parts) + "."
