"""The payment of one order as a state machine, with no I/O.

Each order has one payment row, created and locked when its first event arrives (status
"new"). Its events may arrive in any order and any number of times:

- OrderCreated authorises a new payment -> authorised, or failed if the provider declines.
  On any other status it is a duplicate, or the order was cancelled first: nothing happens.
- OrderCancelled on a new payment leaves the tombstone "cancelled", so a late OrderCreated
  authorises nothing; an authorised payment is voided -> voided; any other does nothing.
- OrderShipped captures an authorised payment -> captured; a captured one is a duplicate.
  Any other is refused: only a confirmed order ships, and it is confirmed only after the
  authorisation, so the event is retried and then parked.

The provider is called with an idempotency key derived from the order id, so even a retry
after a crash between the provider's answer and our commit never authorises, captures or
voids twice.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import assert_never

from shared_core.errors import Conflict
from shared_events.events import OrderCancelled, OrderCreated, OrderShipped


class Status(StrEnum):
    NEW = "new"
    AUTHORISED = "authorised"
    FAILED = "failed"
    CAPTURED = "captured"
    VOIDED = "voided"
    # The tombstone of an order cancelled before its OrderCreated arrived: it is no payment,
    # nothing is ever asked of the provider for it.
    CANCELLED = "cancelled"


class Action(StrEnum):
    """What an event does to a payment. The first three are calls to the provider."""

    AUTHORISE = "authorise"
    CAPTURE = "capture"
    VOID = "void"
    TOMBSTONE = "tombstone"
    NOTHING = "nothing"


PROVIDER_CALLS = frozenset({Action.AUTHORISE, Action.CAPTURE, Action.VOID})

PaymentEvent = OrderCreated | OrderCancelled | OrderShipped


class NothingToCapture(Conflict):
    """An order shipped whose payment was never authorised (or was failed or voided)."""

    code = "nothing_to_capture"


def decide(status: str, event: PaymentEvent) -> Action:
    """What ``event`` does to a payment in ``status``: total over every status and event.

    Raises NothingToCapture for an OrderShipped whose payment is neither authorised nor
    already captured."""
    match event:
        case OrderCreated():
            # Any other status: a duplicate, or the order was cancelled first.
            return Action.AUTHORISE if status == Status.NEW else Action.NOTHING
        case OrderCancelled():
            if status == Status.NEW:
                return Action.TOMBSTONE
            if status == Status.AUTHORISED:
                return Action.VOID
            return Action.NOTHING  # failed, captured, voided or already cancelled
        case OrderShipped():
            if status == Status.AUTHORISED:
                return Action.CAPTURE
            if status == Status.CAPTURED:
                return Action.NOTHING
            raise NothingToCapture(
                f"no authorised payment to capture for order {event.order_id}",
                {"orderId": str(event.order_id), "status": status},
            )
        case _:
            assert_never(event)


def status_after(action: Action, *, success: bool = True) -> Status:
    """The payment's status once ``action`` is done. ``success`` is the provider's answer to an
    authorisation (a decline is an answer, not an error); a refused capture or void raises in
    the provider and changes nothing here."""
    if action is Action.AUTHORISE:
        return Status.AUTHORISED if success else Status.FAILED
    if action is Action.CAPTURE:
        return Status.CAPTURED
    if action is Action.VOID:
        return Status.VOIDED
    if action is Action.TOMBSTONE:
        return Status.CANCELLED
    raise ValueError(f"{action} changes no status")


def idempotency_key(action: Action, order_id: uuid.UUID) -> str:
    """The provider's idempotency key for one call on one order's payment: a retry of the same
    call sends the same key, so the provider does it once."""
    if action not in PROVIDER_CALLS:
        raise ValueError(f"{action} is no provider call")
    return f"{action}-{order_id}"


def listed_owner(user_id: uuid.UUID, is_admin: bool) -> uuid.UUID | None:
    """Whose payments a caller may list: their own, or everyone's (None) for an admin."""
    return None if is_admin else user_id
