"""orders.request_fingerprint: an Idempotency-Key means one request; keys can expire

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SHA-256 of the request body the key was first used with (null: placed before this).
    op.add_column("orders", sa.Column("request_fingerprint", sa.String(64), nullable=True))
    # An expired key is cleared, so the customer may use it again.
    op.alter_column("orders", "idempotency_key", nullable=True)


def downgrade() -> None:
    op.execute("UPDATE orders SET idempotency_key = id::text WHERE idempotency_key IS NULL")
    op.alter_column("orders", "idempotency_key", nullable=False)
    op.drop_column("orders", "request_fingerprint")
