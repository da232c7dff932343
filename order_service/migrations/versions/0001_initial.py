"""orders, order lines, saga timeline, outbox and inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared_events import store

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_email", sa.String(320), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stock_status", sa.String(20), nullable=False),
        sa.Column("payment_status", sa.String(20), nullable=False),
        sa.Column("total_amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("shipping_address", JSONB, nullable=False),
        sa.Column("payment_method_id", sa.String(120), nullable=False),
        sa.Column("cancel_code", sa.String(40), nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
        sa.Column("tracking_number", sa.String(100), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_orders_idempotency"),
    )
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
    op.create_index(
        "ix_orders_pending_deadline",
        "orders",
        ["deadline_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
    )
    op.create_table(
        "order_timeline",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("details", JSONB, nullable=True),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.func.clock_timestamp(),
            nullable=False,
        ),
    )
    op.create_index("ix_order_timeline_order_id", "order_timeline", ["order_id"])
    store.create_tables(op)


def downgrade() -> None:
    store.drop_tables(op)
    op.drop_table("order_timeline")
    op.drop_table("order_lines")
    op.drop_table("orders")
