"""The event catalogue (docs/events.md): flat camelCase bodies with ``id`` and ``createdAt``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared_core.fields import refuse_control_characters


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def no_control_characters(cls, value: Any) -> Any:
        # In any string of any body: NUL (PostgreSQL cannot store it) and the other control
        # characters are bad input (422), never a 500; tabs and line breaks are text.
        if isinstance(value, str):
            refuse_control_characters(value)
        return value


class Event(CamelModel):
    routing_key: ClassVar[str]

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class OrderLine(CamelModel):
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Decimal


class StockLine(CamelModel):
    product_id: uuid.UUID
    quantity: int
    # On StockReservationFailed: what was available when the order asked for ``quantity``.
    available: int | None = None


class UserRegistered(Event):
    routing_key: ClassVar[str] = "user.registered"
    user_id: uuid.UUID
    email: str
    full_name: str
    phone: str | None = None


class UserDeleted(Event):
    """The account is gone: every service erases or anonymises what it holds of that person."""

    routing_key: ClassVar[str] = "user.deleted"
    user_id: uuid.UUID


class EmailVerificationRequested(Event):
    """Send the link that verifies ``email`` (at registration, or asked for again). The message
    holds nothing the registrant chose: the address it goes to is the only thing theirs."""

    routing_key: ClassVar[str] = "user.email_verification_requested"
    user_id: uuid.UUID
    email: str
    token: str  # the link's; a secret until it expires
    expires_at: datetime


class EmailVerified(Event):
    """The account's owner followed a link sent to ``email``: the shop may now write to it with
    the name they gave (the welcome e-mail)."""

    routing_key: ClassVar[str] = "user.email_verified"
    user_id: uuid.UUID
    email: str
    full_name: str
    phone: str | None = None


class PasswordResetRequested(Event):
    """Send the link that sets a new password, to the account's address (it holds no name)."""

    routing_key: ClassVar[str] = "user.password_reset_requested"
    user_id: uuid.UUID
    email: str
    token: str  # the link's; a secret until it expires or is used
    expires_at: datetime


class UserTokensRevoked(Event):
    """Every token the account held is refused from now on (a new password, a deactivation, a
    change of role): live streams opened with one end at once."""

    routing_key: ClassVar[str] = "user.tokens_revoked"
    user_id: uuid.UUID
    reason: str  # password_changed | password_reset | deactivated | activated | role_changed


class OrderCreated(Event):
    routing_key: ClassVar[str] = "order.created"
    order_id: uuid.UUID
    user_id: uuid.UUID
    total_amount: Decimal
    currency: str
    user_email: str
    items: list[OrderLine]
    # The Stripe payment method the customer chose (an id such as pm_card_visa, never card data).
    payment_method_id: str


class StockReserved(Event):
    routing_key: ClassVar[str] = "stock.reserved"
    order_id: uuid.UUID
    items: list[StockLine]


class StockReservationFailed(Event):
    routing_key: ClassVar[str] = "stock.reservation_failed"
    order_id: uuid.UUID
    reason: str
    items: list[StockLine]


class InventoryUpdated(Event):
    routing_key: ClassVar[str] = "inventory.updated"
    product_id: uuid.UUID
    new_quantity: int


class PaymentProcessed(Event):
    routing_key: ClassVar[str] = "payment.processed"
    order_id: uuid.UUID
    payment_id: uuid.UUID | None = None
    success: bool
    transaction_id: str | None = None
    reason: str | None = None
    decline_code: str | None = None
    user_id: uuid.UUID
    user_email: str


# What a decline means, in the customer's words, by the provider's decline code (Stripe's):
# the order's cancel reason and the payment-failed e-mail say the same.
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


def declined_in_words(decline_code: str | None, provider_reason: str | None) -> str:
    """A decline in plain words (no full stop): by its code, else the provider's own words."""
    words = DECLINE_WORDS.get(decline_code or "")
    if words is None:
        words = (provider_reason or "the payment was declined").rstrip(".").lower()
    return words


class OrderConfirmed(Event):
    routing_key: ClassVar[str] = "order.confirmed"
    order_id: uuid.UUID
    user_id: uuid.UUID
    user_email: str


class OrderCancelled(Event):
    routing_key: ClassVar[str] = "order.cancelled"
    order_id: uuid.UUID
    user_id: uuid.UUID
    user_email: str
    reason: str


class OrderShipped(Event):
    routing_key: ClassVar[str] = "order.shipped"
    order_id: uuid.UUID
    tracking_number: str
    user_id: uuid.UUID
    user_email: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_type(): cls
    for cls in (
        UserRegistered,
        UserDeleted,
        OrderCreated,
        StockReserved,
        StockReservationFailed,
        InventoryUpdated,
        PaymentProcessed,
        OrderConfirmed,
        OrderCancelled,
        OrderShipped,
    )
}
