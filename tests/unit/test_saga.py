"""The order saga's state machine, over every order of arrival, duplicates included."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_service.domain import (
    AdminShipped,
    Cancel,
    Confirm,
    CustomerCancelled,
    DeadlinePassed,
    Input,
    Output,
    PaymentWasAuthorised,
    PaymentWasDeclined,
    Saga,
    Ship,
    ShopCancelled,
    Status,
    StockWasReserved,
    StockWasShort,
    TransitionRefused,
    decide,
    out_of_stock_reason,
    payment_declined_reason,
)


def run(inputs: list[Input]) -> tuple[Saga, list[Output]]:
    saga, emitted = Saga(), []
    for saga_input in inputs:
        try:
            saga, outputs = decide(saga, saga_input)
        except TransitionRefused:
            continue
        emitted += outputs
    return saga, emitted


FACTS = {
    "reserved": StockWasReserved(),
    "short": StockWasShort("Out of stock: Mug (2 ordered, 1 left)."),
    "authorised": PaymentWasAuthorised(),
    "declined": PaymentWasDeclined("Payment declined: your card was declined."),
}


@pytest.mark.parametrize(
    ("stock", "payment", "status", "code"),
    [
        ("reserved", "authorised", Status.CONFIRMED, None),
        ("reserved", "declined", Status.CANCELLED, "payment_declined"),
        ("short", "authorised", Status.CANCELLED, "out_of_stock"),
        ("short", "declined", Status.CANCELLED, None),  # whichever failure came first
    ],
)
def test_every_arrival_order_with_duplicates_ends_the_same(stock, payment, status, code):
    facts = [FACTS[stock], FACTS[stock], FACTS[payment], FACTS[payment]]
    for arrival in set(itertools.permutations(range(4))):
        saga, emitted = run([facts[i] for i in arrival])
        assert saga.status is status
        if code:
            assert saga.cancel_code == code
        kinds = [type(o) for o in emitted]
        assert kinds == ([Confirm] if status is Status.CONFIRMED else [Cancel])


def test_a_cancel_before_the_outcome_wins_and_later_facts_change_nothing():
    saga, emitted = run([CustomerCancelled(), StockWasReserved(), PaymentWasAuthorised()])
    assert saga.status is Status.CANCELLED
    assert saga.cancel_code == "customer"
    assert emitted == [Cancel("customer", "Cancelled at your request.")]


def test_deadline_cancels_only_a_pending_order():
    saga, emitted = run([StockWasReserved(), DeadlinePassed(), PaymentWasAuthorised()])
    assert (saga.status, saga.cancel_code) == (Status.CANCELLED, "deadline")
    assert [type(o) for o in emitted] == [Cancel]
    saga, emitted = run([StockWasReserved(), PaymentWasAuthorised(), DeadlinePassed()])
    assert saga.status is Status.CONFIRMED
    assert emitted == [Confirm()]


def test_commands_are_refused_where_the_state_does_not_allow_them():
    with pytest.raises(TransitionRefused) as refused:
        decide(Saga(), AdminShipped("TRACK-1"))
    assert refused.value.code == "order_not_shippable"
    shipped, _ = run([StockWasReserved(), PaymentWasAuthorised(), AdminShipped("TRACK-1")])
    assert shipped.status is Status.SHIPPED
    for command in (CustomerCancelled(), ShopCancelled("no stock"), AdminShipped("TRACK-2")):
        with pytest.raises(TransitionRefused):
            decide(shipped, command)
    cancelled, _ = run([CustomerCancelled()])
    with pytest.raises(TransitionRefused) as refused:
        decide(cancelled, CustomerCancelled())
    assert refused.value.code == "order_not_cancellable"


def test_a_confirmed_order_can_be_cancelled_once():
    saga, emitted = run(
        [StockWasReserved(), PaymentWasAuthorised(), CustomerCancelled(), CustomerCancelled()]
    )
    assert saga.status is Status.CANCELLED
    assert [type(o) for o in emitted] == [Confirm, Cancel]


inputs = st.one_of(
    st.sampled_from(list(FACTS.values())),
    st.just(CustomerCancelled()),
    st.just(DeadlinePassed()),
    st.builds(AdminShipped, st.sampled_from(["T-1", "T-2"])),
)


def consistent(history: list[Input]) -> bool:
    """Product answers once (reserved or short), payment once (authorised or declined);
    either may be delivered any number of times."""
    stock = {type(i) for i in history if isinstance(i, StockWasReserved | StockWasShort)}
    payment = {type(i) for i in history if isinstance(i, PaymentWasAuthorised | PaymentWasDeclined)}
    return len(stock) <= 1 and len(payment) <= 1


@given(st.lists(inputs, max_size=12).filter(consistent))
def test_saga_properties_hold_for_any_history(history):
    saga, emitted = run(history)
    kinds = [type(o) for o in emitted]
    # Each outcome is emitted at most once, and in a possible order.
    assert kinds.count(Confirm) <= 1 and kinds.count(Cancel) <= 1 and kinds.count(Ship) <= 1
    assert kinds in (
        [],
        [Confirm],
        [Cancel],
        [Confirm, Cancel],
        [Confirm, Ship],
    )
    # Confirmed only with both successes seen; shipped only after confirmation.
    if Confirm in kinds:
        assert any(isinstance(i, StockWasReserved) for i in history)
        assert any(isinstance(i, PaymentWasAuthorised) for i in history)
    # The final status is what the emitted events say.
    expected = {
        (): Status.PENDING,
        (Confirm,): Status.CONFIRMED,
        (Cancel,): Status.CANCELLED,
        (Confirm, Cancel): Status.CANCELLED,
        (Confirm, Ship): Status.SHIPPED,
    }[tuple(kinds)]
    assert saga.status is expected
    # Nothing failed, nobody cancelled, both succeeded: the order is confirmed (or shipped).
    quiet = not any(
        isinstance(i, StockWasShort | PaymentWasDeclined | CustomerCancelled | DeadlinePassed)
        for i in history
    )
    both = any(isinstance(i, StockWasReserved) for i in history) and any(
        isinstance(i, PaymentWasAuthorised) for i in history
    )
    if quiet and both:
        assert saga.status in (Status.CONFIRMED, Status.SHIPPED)
    # A pending order is never left pending by a failure or a deadline.
    if any(isinstance(i, StockWasShort | PaymentWasDeclined | DeadlinePassed) for i in history):
        assert saga.status is not Status.PENDING


def test_reasons_are_plain_words():
    assert payment_declined_reason("insufficient_funds", None) == (
        "Payment declined: your card has insufficient funds."
    )
    assert (
        payment_declined_reason("weird_code", "Card refused.") == "Payment declined: card refused."
    )
    assert out_of_stock_reason([("Mug", 3, 1), ("Pot", 1, None)]) == (
        "Out of stock: Mug (3 ordered, 1 left); Pot (1 ordered, none left)."
    )


def test_the_shop_cancels_with_the_reason_the_customer_is_told():
    for before in ([], [StockWasReserved(), PaymentWasAuthorised()]):  # PENDING, CONFIRMED
        saga, emitted = run([*before, ShopCancelled("The item was damaged in the warehouse.")])
        assert saga.status is Status.CANCELLED and saga.cancel_code == "shop"
        reason = "Cancelled by the shop: The item was damaged in the warehouse."
        assert saga.cancel_reason == reason
        assert emitted[-1] == Cancel("shop", reason)
