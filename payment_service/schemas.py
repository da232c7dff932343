"""Response bodies of payment_service."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from shared_events.events import CamelModel


class PaymentOut(CamelModel):
    id: uuid.UUID
    order_id: uuid.UUID
    amount: Decimal | None
    currency: str | None
    status: str
    provider: str | None
    provider_payment_id: str | None
    decline_code: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime | None


class PaymentPage(CamelModel):
    items: list[PaymentOut]
    total: int
    page: int
    page_size: int
