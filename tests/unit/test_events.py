"""Event models: the wire format of docs/events.md."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared_events.events import EVENT_TYPES, OrderCreated, OrderLine, UserRegistered
from shared_events.topology import parked_queue_name, retry_delays_ms, retry_queue_name


def test_events_are_flat_camel_case_with_id_and_created_at():
    event = UserRegistered(user_id=uuid.uuid4(), email="a@example.com", full_name="A B")
    body = json.loads(event.to_json())
    assert set(body) == {"id", "createdAt", "userId", "email", "fullName", "phone"}
    assert body["createdAt"].endswith("Z")
    assert UserRegistered.model_validate_json(event.to_json()) == event


def test_money_travels_as_a_string_never_a_float():
    order = OrderCreated(
        order_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        total_amount=Decimal("59.90"),
        currency="EUR",
        user_email="a@example.com",
        items=[
            OrderLine(product_id=uuid.uuid4(), name="Mug", quantity=2, unit_price=Decimal("29.95"))
        ],
        payment_method_id="pm_card_visa",
    )
    body = json.loads(order.to_json())
    assert body["totalAmount"] == "59.90"
    assert body["items"][0]["unitPrice"] == "29.95"
    assert OrderCreated.model_validate_json(order.to_json()).total_amount == Decimal("59.90")


def test_a_body_missing_a_field_is_rejected():
    with pytest.raises(ValidationError):
        UserRegistered.model_validate_json(b'{"email": "a@example.com"}')


def test_every_event_type_has_a_unique_routing_key():
    keys = [cls.routing_key for cls in EVENT_TYPES.values()]
    assert len(keys) == len(set(keys)) == 10
    assert EVENT_TYPES["OrderCreated"].routing_key == "order.created"


def test_retry_delays_grow_exponentially_and_name_their_queues():
    assert retry_delays_ms(5, 1000) == [1000, 2000, 4000, 8000]
    assert retry_delays_ms(1, 1000) == []
    assert retry_queue_name("notification_service", 2000) == "notification_service.retry.2000ms"
    assert parked_queue_name("notification_service") == "notification_service.parked"
