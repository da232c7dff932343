"""notification_service's rules: which messages each event leads to, and what they say."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from notification_service.domain import (
    Message,
    decline_reason,
    greeting,
    link_email,
    order_messages,
    order_ref,
    welcome,
)
from notification_service.templates import render
from order_service.domain import payment_declined_reason
from shared_events.events import (
    EmailVerificationRequested,
    EmailVerified,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderLine,
    OrderShipped,
    PasswordResetRequested,
    PaymentProcessed,
)

USER = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
ORDER = uuid.UUID("3f2b9c1e-7d4a-4e8b-9c0d-1a2b3c4d5e6f")
EMAIL = "grace.hopper@example.com"


@dataclasses.dataclass(frozen=True)
class Contact:
    full_name: str
    phone: str | None = None
    verified: bool = True


def rendered(message: Message, shop_name: str = "Demo Shop"):
    return render(message.template, message.channel, {"shop_name": shop_name, **message.values})


def created(**overrides) -> OrderCreated:
    fields = {
        "order_id": ORDER,
        "user_id": USER,
        "user_email": EMAIL,
        "total_amount": Decimal("59.97"),
        "currency": "EUR",
        "items": [
            OrderLine(
                product_id=uuid.uuid4(), name="Kettle", quantity=2, unit_price=Decimal("19.99")
            ),
            OrderLine(product_id=uuid.uuid4(), name="Mug", quantity=1, unit_price=Decimal("19.99")),
        ],
        "payment_method_id": "pm_card_visa",
    }
    return OrderCreated(**{**fields, **overrides})


def shipped() -> OrderShipped:
    return OrderShipped(order_id=ORDER, user_id=USER, user_email=EMAIL, tracking_number="1Z999")


def payment(success: bool, reason: str | None = None) -> PaymentProcessed:
    return PaymentProcessed(
        order_id=ORDER, user_id=USER, user_email=EMAIL, success=success, reason=reason
    )


def test_an_order_is_shown_by_its_ids_first_eight_characters_in_upper_case():
    assert order_ref(ORDER) == "#3F2B9C1E"


def test_the_greeting_names_a_verified_contact_only():
    assert greeting(Contact("Grace Hopper")) == "Hello Grace Hopper,"
    # Until the address is shown to be theirs, nothing a registrant typed goes to it.
    assert greeting(Contact("Grace Hopper", verified=False)) == "Hello,"
    assert greeting(None) == "Hello,"


def test_a_verified_address_leads_to_a_welcome_email_there():
    event = EmailVerified(user_id=USER, email="ada@example.com", full_name="Ada", phone="+4915")
    message = welcome(event)
    assert (message.channel, message.template, message.to) == ("email", "welcome", event.email)
    assert message.reference is None
    assert message.values == {"full_name": "Ada", "email": "ada@example.com"}
    assert rendered(message, "Shop").subject == "Welcome to Shop, Ada"


@pytest.mark.parametrize(
    ("event_type", "template", "page"),
    [
        (EmailVerificationRequested, "verify_email", "/verify-email"),
        (PasswordResetRequested, "password_reset", "/reset-password"),
    ],
)
def test_a_link_email_holds_the_link_and_nothing_the_registrant_chose(event_type, template, page):
    expires = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)
    event = event_type(user_id=USER, email=EMAIL, token="t0k.en", expires_at=expires)
    message = link_email(event, "https://shop.example/")
    assert (message.channel, message.template, message.to) == ("email", template, EMAIL)
    link = f"https://shop.example{page}#token=t0k.en"  # after "#": never sent to a server
    assert message.values == {"link": link, "expires": "2026-12-04 18:30 UTC"}
    out = rendered(message, "Demo Shop")
    assert link in out.text and "2026-12-04 18:30 UTC" in out.text
    assert out.text.startswith("Hello,\n")
    assert EMAIL not in out.text and "grace" not in out.text.lower()


def test_an_order_created_leads_to_an_order_received_email_with_its_lines_and_total():
    [message] = order_messages(created(), Contact("Grace Hopper", "+15005550006"))
    assert (message.channel, message.template, message.to) == ("email", "order_received", EMAIL)
    assert message.reference == ORDER
    assert message.values == {
        "greeting": "Hello Grace Hopper,",
        "order_ref": "#3F2B9C1E",
        "lines": "  2 x Kettle at 19.99 EUR\n  1 x Mug at 19.99 EUR",
        "total": "59.97",
        "currency": "EUR",
    }


def test_the_order_received_email_renders_subject_lines_and_total():
    [message] = order_messages(created(), None)
    out = rendered(message, "Demo Shop")
    assert out.subject == "We received your order #3F2B9C1E"
    assert out.text.startswith("Hello,\n")  # no contact, so no name
    assert "  2 x Kettle at 19.99 EUR\n  1 x Mug at 19.99 EUR\nTotal: 59.97 EUR\n" in out.text
    assert out.text.rstrip().endswith("the Demo Shop team")


def test_an_order_confirmed_leads_to_one_confirmation_email():
    event = OrderConfirmed(order_id=ORDER, user_id=USER, user_email=EMAIL)
    [message] = order_messages(event, None)
    assert (message.channel, message.template, message.to) == ("email", "order_confirmed", EMAIL)
    assert message.values == {"greeting": "Hello,", "order_ref": "#3F2B9C1E"}
    assert rendered(message).subject == "Your order #3F2B9C1E is confirmed"


def test_an_order_cancelled_email_carries_the_reason():
    event = OrderCancelled(
        order_id=ORDER, user_id=USER, user_email=EMAIL, reason="Kettle is out of stock."
    )
    [message] = order_messages(event, Contact("Grace"))
    assert (message.channel, message.template) == ("email", "order_cancelled")
    assert message.values["reason"] == "Kettle is out of stock."
    out = rendered(message)
    assert out.subject == "Your order #3F2B9C1E was cancelled"
    assert "your order #3F2B9C1E was cancelled. Kettle is out of stock." in out.text


def test_a_payment_that_went_through_sends_nothing():
    assert order_messages(payment(success=True), Contact("Grace", "+15005550006")) == []


def test_a_failed_payment_leads_to_a_payment_failed_email_with_the_reason():
    [message] = order_messages(payment(success=False, reason="Your card was declined"), None)
    assert (message.channel, message.template, message.to) == ("email", "payment_failed", EMAIL)
    assert message.values["reason"] == "your card was declined."
    out = rendered(message)
    assert out.subject == "Payment for your order #3F2B9C1E did not go through"
    assert "for your order #3F2B9C1E: your card was declined.\n" in out.text


@pytest.mark.parametrize(
    ("code", "reason", "said"),
    [
        (
            "insufficient_funds",
            "Your card has insufficient funds.",
            "your card has insufficient funds.",
        ),
        ("expired_card", None, "your card has expired."),
        (None, None, "the payment was declined."),
        (None, "", "the payment was declined."),
        ("something_new", "Try another card...", "try another card."),
    ],
)
def test_a_decline_is_said_in_the_same_words_as_the_orders_cancel_reason(code, reason, said):
    assert decline_reason(code, reason) == said
    assert payment_declined_reason(code, reason) == f"Payment declined: {said}"


def test_a_shipment_to_a_customer_with_a_phone_sends_an_email_then_an_sms():
    email, sms = order_messages(shipped(), Contact("Grace", "+15005550006"))
    assert (email.channel, email.template, email.to) == ("email", "order_shipped", EMAIL)
    assert email.values == {
        "greeting": "Hello Grace,",
        "order_ref": "#3F2B9C1E",
        "tracking_number": "1Z999",
    }
    assert (sms.channel, sms.template, sms.to) == ("sms", "order_shipped", "+15005550006")
    assert sms.reference == ORDER
    assert sms.values == {"order_ref": "#3F2B9C1E", "tracking_number": "1Z999"}


@pytest.mark.parametrize("contact", [None, Contact("Grace"), Contact("Grace", "")])
def test_a_shipment_without_a_known_phone_sends_only_the_email(contact):
    [message] = order_messages(shipped(), contact)
    assert message.channel == "email"


def test_the_shipping_sms_renders_one_line_with_the_tracking_number():
    _, sms = order_messages(shipped(), Contact("Grace", "+15005550006"))
    out = rendered(sms, "Demo Shop")
    assert out.subject == "Demo Shop order shipped"
    assert out.text.strip() == "Demo Shop: your order #3F2B9C1E has shipped. Tracking: 1Z999"


@pytest.mark.parametrize(
    "event",
    [
        created(),
        OrderConfirmed(order_id=ORDER, user_id=USER, user_email=EMAIL),
        OrderCancelled(order_id=ORDER, user_id=USER, user_email=EMAIL, reason="Out of stock."),
        payment(success=False),
        shipped(),
    ],
    ids=lambda event: type(event).__name__,
)
def test_every_chosen_message_has_all_the_values_its_template_names(event):
    for message in order_messages(event, Contact("Grace", "+15005550006")):
        # A missing value would raise KeyError here rather than send a blank.
        assert rendered(message).subject
