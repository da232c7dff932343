"""Response bodies of notification_service."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared_events.events import CamelModel


class DeliveryResponse(CamelModel):
    id: uuid.UUID
    event_id: uuid.UUID
    channel: str
    template: str
    recipient: str
    subject: str
    status: str
    attempts: int
    provider: str
    provider_message_id: str | None
    created_at: datetime


class DeliveryPage(CamelModel):
    items: list[DeliveryResponse]
    total: int
    page: int
    page_size: int
