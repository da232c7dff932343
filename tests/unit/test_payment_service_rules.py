"""The payment state machine: every status under every event, arrival orders, duplicates."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payment_service.domain import (
    PROVIDER_CALLS,
    Action,
    NothingToCapture,
    PaymentEvent,
    Status,
    decide,
    idempotency_key,
    listed_owner,
    status_after,
)
from shared_core.errors import Conflict
from shared_events.events import OrderCancelled, OrderCreated, OrderShipped

ORDER_ID = uuid.UUID("6f1c2a9e-0b7d-4c55-9a43-1d2e3f405162")
USER_ID = uuid.UUID("0a4b8c2d-1e3f-4a5b-8c7d-9e0f1a2b3c4d")

CREATED = OrderCreated(
    order_id=ORDER_ID,
    user_id=USER_ID,
    total_amount=Decimal("20.00"),
    currency="EUR",
    user_email="p@example.com",
    items=[],
    payment_method_id="pm_card_visa",
)
CANCELLED = OrderCancelled(
    order_id=ORDER_ID, user_id=USER_ID, user_email="p@example.com", reason="x"
)
SHIPPED = OrderShipped(
    order_id=ORDER_ID, tracking_number="T-1", user_id=USER_ID, user_email="p@example.com"
)
EVENTS = {"created": CREATED, "cancelled": CANCELLED, "shipped": SHIPPED}

REFUSED = "refused"
# Every status under every event: the whole transition table.
TABLE: dict[tuple[Status, str], Action | str] = {
    (Status.NEW, "created"): Action.AUTHORISE,
    (Status.NEW, "cancelled"): Action.TOMBSTONE,
    (Status.NEW, "shipped"): REFUSED,
    (Status.AUTHORISED, "created"): Action.NOTHING,
    (Status.AUTHORISED, "cancelled"): Action.VOID,
    (Status.AUTHORISED, "shipped"): Action.CAPTURE,
    (Status.FAILED, "created"): Action.NOTHING,
    (Status.FAILED, "cancelled"): Action.NOTHING,
    (Status.FAILED, "shipped"): REFUSED,
    (Status.CAPTURED, "created"): Action.NOTHING,
    (Status.CAPTURED, "cancelled"): Action.NOTHING,
    (Status.CAPTURED, "shipped"): Action.NOTHING,
    (Status.VOIDED, "created"): Action.NOTHING,
    (Status.VOIDED, "cancelled"): Action.NOTHING,
    (Status.VOIDED, "shipped"): REFUSED,
    (Status.CANCELLED, "created"): Action.NOTHING,
    (Status.CANCELLED, "cancelled"): Action.NOTHING,
    (Status.CANCELLED, "shipped"): REFUSED,
}


def test_the_table_covers_every_status_and_event():
    assert set(TABLE) == set(itertools.product(Status, EVENTS))


@pytest.mark.parametrize(("status", "event", "expected"), [(*k, v) for k, v in TABLE.items()])
def test_each_event_in_each_status(status, event, expected):
    # The row holds a plain string: decide must work on it, not only on the enum.
    if expected == REFUSED:
        with pytest.raises(NothingToCapture):
            decide(status.value, EVENTS[event])
    else:
        assert decide(status.value, EVENTS[event]) is expected


def test_statuses_are_the_strings_stored_in_the_payments_table():
    assert {s.value for s in Status} == {
        "new",
        "authorised",
        "failed",
        "captured",
        "voided",
        "cancelled",
    }


def test_an_unknown_status_authorises_and_voids_nothing_and_is_not_captured():
    assert decide("refunded", CREATED) is Action.NOTHING
    assert decide("refunded", CANCELLED) is Action.NOTHING
    with pytest.raises(NothingToCapture):
        decide("refunded", SHIPPED)


def test_nothing_to_capture_is_a_conflict_naming_the_order():
    with pytest.raises(NothingToCapture) as refused:
        decide("failed", SHIPPED)
    assert isinstance(refused.value, Conflict)
    assert refused.value.code == "nothing_to_capture"
    assert str(refused.value) == f"no authorised payment to capture for order {ORDER_ID}"
    assert refused.value.details == {"orderId": str(ORDER_ID), "status": "failed"}


@pytest.mark.parametrize(
    ("action", "success", "status"),
    [
        (Action.AUTHORISE, True, Status.AUTHORISED),
        (Action.AUTHORISE, False, Status.FAILED),
        (Action.CAPTURE, True, Status.CAPTURED),
        (Action.VOID, True, Status.VOIDED),
        (Action.TOMBSTONE, True, Status.CANCELLED),
    ],
)
def test_status_after_each_action(action, success, status):
    assert status_after(action, success=success) is status


def test_doing_nothing_has_no_status_after():
    with pytest.raises(ValueError):
        status_after(Action.NOTHING)


@pytest.mark.parametrize("action", sorted(PROVIDER_CALLS))
def test_idempotency_keys_are_one_per_call_and_order(action):
    other_order = uuid.uuid4()
    # The format is what Stripe has stored: a retry after a release must send the same key.
    assert idempotency_key(action, ORDER_ID) == f"{action.value}-{ORDER_ID}"
    assert idempotency_key(action, ORDER_ID) != idempotency_key(action, other_order)
    others = {idempotency_key(a, ORDER_ID) for a in PROVIDER_CALLS if a is not action}
    assert idempotency_key(action, ORDER_ID) not in others


@pytest.mark.parametrize("action", [Action.TOMBSTONE, Action.NOTHING])
def test_only_provider_calls_have_idempotency_keys(action):
    with pytest.raises(ValueError):
        idempotency_key(action, ORDER_ID)


def test_an_admin_lists_everyone_and_a_customer_only_themself():
    assert listed_owner(USER_ID, is_admin=True) is None
    assert listed_owner(USER_ID, is_admin=False) == USER_ID


# --- whole histories, as the service applies them -----------------------------------------


def run(events: list[PaymentEvent], approve: bool = True) -> tuple[str, list[Action], int]:
    """Apply events to a new payment: its last status, the provider calls, the refusals."""
    status, calls, refused = Status.NEW.value, [], 0
    for event in events:
        try:
            action = decide(status, event)
        except NothingToCapture:
            refused += 1  # the event is retried, then parked; the row is unchanged
            continue
        if action is Action.NOTHING:
            continue
        if action in PROVIDER_CALLS:
            calls.append(action)
        status = status_after(action, success=approve).value
    return status, calls, refused


@pytest.mark.parametrize(
    "order", sorted(set(itertools.permutations(["created", "created", "cancelled", "cancelled"])))
)
def test_created_and_cancelled_twice_in_any_order(order):
    status, calls, _ = run([EVENTS[name] for name in order])
    if order.index("cancelled") < order.index("created"):
        # The tombstone: the late OrderCreated authorises nothing.
        assert (status, calls) == ("cancelled", [])
    else:
        assert (status, calls) == ("voided", [Action.AUTHORISE, Action.VOID])


def test_a_shipped_order_is_captured_once():
    status, calls, refused = run([CREATED, CREATED, SHIPPED, SHIPPED, CANCELLED])
    assert (status, calls, refused) == ("captured", [Action.AUTHORISE, Action.CAPTURE], 0)


def test_a_declined_payment_is_never_voided_or_captured():
    status, calls, refused = run([CREATED, CANCELLED, SHIPPED], approve=False)
    assert (status, calls, refused) == ("failed", [Action.AUTHORISE], 1)


def test_a_shipment_before_the_authorisation_is_refused_until_it_comes():
    status, calls, refused = run([SHIPPED, CREATED, SHIPPED])
    assert (status, calls, refused) == ("captured", [Action.AUTHORISE, Action.CAPTURE], 1)


def test_a_voided_payment_is_not_captured():
    status, calls, refused = run([CREATED, CANCELLED, SHIPPED])
    assert (status, calls, refused) == ("voided", [Action.AUTHORISE, Action.VOID], 1)


@given(
    st.lists(st.sampled_from(list(EVENTS)), max_size=12),
    st.booleans(),
)
def test_any_history_calls_the_provider_at_most_once_per_call(names, approve):
    status, calls, _ = run([EVENTS[name] for name in names], approve)
    assert calls.count(Action.AUTHORISE) <= 1
    assert not {Action.CAPTURE, Action.VOID} <= set(calls)  # captured or voided, never both
    assert len(calls) == len(set(calls))
    if calls:
        assert calls[0] is Action.AUTHORISE  # nothing is captured or voided before it
    if not approve:
        assert calls in ([], [Action.AUTHORISE])
    if "created" not in names:
        assert calls == []
        assert status == ("cancelled" if "cancelled" in names else "new")
