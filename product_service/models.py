"""Catalog tables: categories and products (with their stock)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Name weighs more than description in the ranking; 'english' stems "mugs" to "mug".
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B')"
)


class Base(DeclarativeBase):
    pass


class Category(Base):
    __tablename__ = "categories"

    slug: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        sa.CheckConstraint("price > 0", name="price_positive"),
        sa.CheckConstraint("available_quantity >= 0", name="available_not_negative"),
        sa.CheckConstraint("reserved_quantity >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("sold_quantity >= 0", name="sold_not_negative"),
        sa.Index("ix_products_search", "search_vector", postgresql_using="gin"),
        sa.Index("ix_products_category_price", "category", "price"),
        sa.Index("ix_products_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    sku: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    category: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("categories.slug"), nullable=False
    )
    price: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), nullable=False)
    currency: Mapped[str] = mapped_column(sa.String(3), nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    image_url: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    available_quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    reserved_quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    sold_quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        server_default=sa.func.now(),
        onupdate=sa.func.now(),
        nullable=False,
    )
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR, sa.Computed(SEARCH_VECTOR_SQL, persisted=True), deferred=True
    )


class StockReservation(Base):
    """What one order holds: reserved, then sold or released. Also the tombstone of an order
    cancelled before it was seen (status "cancelled"), so a late OrderCreated reserves nothing."""

    __tablename__ = "stock_reservations"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # new (only inside a transaction), reserved, failed, released, sold, cancelled
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    lines: Mapped[list[dict[str, object]]] = mapped_column(JSONB, nullable=False, default=list)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )
