"""Orders, their lines and their saga timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from order_service.domain import Status


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # The same Idempotency-Key from the same customer is the same order.
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_orders_idempotency"),
        sa.Index("ix_orders_user_created", "user_id", "created_at"),
        sa.Index(
            "ix_orders_pending_deadline",
            "deadline_at",
            postgresql_where=sa.text("status = 'PENDING'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_email: Mapped[str] = mapped_column(sa.String(320), nullable=False)
    # Cleared once expired (IDEMPOTENCY_KEY_TTL): the customer may use it again.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, default=Status.PENDING)
    stock_status: Mapped[str] = mapped_column(sa.String(20), nullable=False, default="pending")
    payment_status: Mapped[str] = mapped_column(sa.String(20), nullable=False, default="pending")
    total_amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), nullable=False)
    currency: Mapped[str] = mapped_column(sa.String(3), nullable=False)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    payment_method_id: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    cancel_code: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    deadline_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )

    # Both loaded only when asked for (selectinload): applying an event locks the order and
    # appends one timeline row; it rarely needs the lines and never the whole history.
    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.position", lazy="raise", cascade="all, delete-orphan"
    )
    timeline: Mapped[list[TimelineEntry]] = relationship(
        order_by="TimelineEntry.id", lazy="raise", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("orders.id"), primary_key=True
    )
    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), nullable=False)

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class TimelineEntry(Base):
    """One step of an order's saga: an event received or emitted, a command, with its time."""

    __tablename__ = "order_timeline"

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("orders.id"), nullable=False, index=True
    )
    event: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    direction: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.clock_timestamp(), nullable=False
    )


# The same tables for SQLAlchemy Core: the saga's writes (order_service.saga) go without the ORM.
ORDERS = cast(sa.Table, Order.__table__)
LINES = cast(sa.Table, OrderLine.__table__)
TIMELINE = cast(sa.Table, TimelineEntry.__table__)
