"""What to send for which event: the messages an event leads to and the values their templates get.

Pure: the event and what is known of the customer come in, a list of messages goes out.
Sending, the delivery log and the contacts are ``service.py``'s.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Literal, Protocol

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
    declined_in_words,
)

Channel = Literal["email", "sms"]

# The events about an order that may lead to a message to the customer.
OrderEvent = OrderCreated | OrderConfirmed | OrderCancelled | PaymentProcessed | OrderShipped


class Known(Protocol):
    """What this service knows of a customer, from their UserRegistered and EmailVerified (the
    contact)."""

    @property
    def full_name(self) -> str: ...

    @property
    def phone(self) -> str | None: ...

    @property
    def verified(self) -> bool: ...


@dataclasses.dataclass(frozen=True)
class Message:
    """One message to send: which template on which channel, to which address, with what.

    ``to`` is an e-mail address on the e-mail channel and a phone number on the SMS one;
    ``reference`` is the order the message is about, if any. The shop's name is not among
    ``values``: the sender adds it to every message."""

    channel: Channel
    template: str
    to: str
    reference: uuid.UUID | None
    values: dict[str, str]


def order_ref(order_id: uuid.UUID) -> str:
    """How a customer sees an order: its id's first 8 characters, upper case."""
    return f"#{str(order_id)[:8].upper()}"


def greeting(contact: Known | None) -> str:
    """How a message greets: by the contact's name once their address is verified; else with
    no name at all. A name is what a registrant typed, and until the address is shown to be
    theirs, the shop writes nothing of theirs to it (it could be anyone's address)."""
    if contact is None or not contact.verified:
        return "Hello,"
    return f"Hello {contact.full_name},"


def order_lines(items: Sequence[OrderLine], currency: str) -> str:
    """One indented line per ordered product, for the "order received" e-mail."""
    return "\n".join(
        f"  {line.quantity} x {line.name} at {line.unit_price} {currency}" for line in items
    )


def decline_reason(decline_code: str | None, reason: str | None) -> str:
    """Why a payment failed, as the order's cancel reason says it, ending with a full stop."""
    return declined_in_words(decline_code, reason) + "."


def sms_number(contact: Known | None) -> str | None:
    """Where an SMS goes: the contact's phone; no contact or no phone means no SMS."""
    if contact is None or not contact.phone:
        return None
    return contact.phone


def welcome(event: EmailVerified) -> Message:
    """A verified address gets the welcome e-mail, which greets the account's name."""
    return Message(
        channel="email",
        template="welcome",
        to=event.email,
        reference=None,
        values={"full_name": event.full_name, "email": event.email},
    )


# The storefront's pages a link opens; the token goes after "#", so no server (the gateway's
# access log included) ever receives it.
LINK_PAGES = {"verify_email": "/verify-email", "password_reset": "/reset-password"}


def link_email(
    event: EmailVerificationRequested | PasswordResetRequested, shop_url: str
) -> Message:
    """The e-mail with a link (verify the address, or reset the password): sent to the
    account's address, holding nothing the account's owner chose."""
    template = "verify_email" if isinstance(event, EmailVerificationRequested) else "password_reset"
    link = f"{shop_url.rstrip('/')}{LINK_PAGES[template]}#token={event.token}"
    return Message(
        channel="email",
        template=template,
        to=event.email,
        reference=None,
        values={"link": link, "expires": event.expires_at.strftime("%Y-%m-%d %H:%M UTC")},
    )


def _order_email(event: OrderEvent, contact: Known | None, template: str, **extra: str) -> Message:
    return Message(
        channel="email",
        template=template,
        to=event.user_email,
        reference=event.order_id,
        values={
            "greeting": greeting(contact),
            "order_ref": order_ref(event.order_id),
            **extra,
        },
    )


def order_messages(event: OrderEvent, contact: Known | None) -> list[Message]:
    """The messages an order event leads to, in the order they are sent.

    Every one gets an e-mail to the order's address, except a payment that went through (the
    confirmation follows); a shipment also gets an SMS when the customer gave a phone."""
    match event:
        case OrderCreated():
            return [
                _order_email(
                    event,
                    contact,
                    "order_received",
                    lines=order_lines(event.items, event.currency),
                    total=str(event.total_amount),
                    currency=event.currency,
                )
            ]
        case OrderConfirmed():
            return [_order_email(event, contact, "order_confirmed")]
        case OrderCancelled():
            return [_order_email(event, contact, "order_cancelled", reason=event.reason)]
        case PaymentProcessed():
            if event.success:
                return []
            reason = decline_reason(event.decline_code, event.reason)
            return [_order_email(event, contact, "payment_failed", reason=reason)]
        case OrderShipped():
            messages = [
                _order_email(event, contact, "order_shipped", tracking_number=event.tracking_number)
            ]
            phone = sms_number(contact)
            if phone is not None:
                messages.append(
                    Message(
                        channel="sms",
                        template="order_shipped",
                        to=phone,
                        reference=event.order_id,
                        values={
                            "order_ref": order_ref(event.order_id),
                            "tracking_number": event.tracking_number,
                        },
                    )
                )
            return messages
