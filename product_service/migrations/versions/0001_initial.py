"""categories, products (full-text search), outbox and inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR, UUID

from product_service.models import SEARCH_VECTOR_SQL
from shared_events import store

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("slug", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )
    op.create_table(
        "products",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("category", sa.String(64), sa.ForeignKey("categories.slug"), nullable=False),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("image_url", sa.String(500), nullable=True),
        sa.Column("available_quantity", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved_quantity", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sold_quantity", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("search_vector", TSVECTOR, sa.Computed(SEARCH_VECTOR_SQL, persisted=True)),
        sa.CheckConstraint("price > 0", name="price_positive"),
        sa.CheckConstraint("available_quantity >= 0", name="available_not_negative"),
        sa.CheckConstraint("reserved_quantity >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("sold_quantity >= 0", name="sold_not_negative"),
    )
    op.create_index("ix_products_search", "products", ["search_vector"], postgresql_using="gin")
    op.create_index("ix_products_category_price", "products", ["category", "price"])
    op.create_index("ix_products_created_at", "products", ["created_at"])
    store.create_tables(op)


def downgrade() -> None:
    store.drop_tables(op)
    op.drop_table("products")
    op.drop_table("categories")
