"""Payments: one row per order, from authorisation to capture or void."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Payment(Base):
    """status (``domain.Status``): new (created by the order's first event, not yet
    authorised), authorised, captured, voided, failed; "cancelled" is the tombstone of an order
    cancelled before its OrderCreated arrived here (nothing is ever authorised for it)."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    user_email: Mapped[str | None] = mapped_column(sa.String(320), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2), nullable=True)
    currency: Mapped[str | None] = mapped_column(sa.String(3), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    provider: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    provider_payment_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    decline_code: Mapped[str | None] = mapped_column(sa.String(60), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )
