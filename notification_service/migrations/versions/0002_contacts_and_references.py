"""contacts (for SMS) and the order a delivery is about

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(16), nullable=True),
    )
    op.add_column("deliveries", sa.Column("reference", UUID(as_uuid=True), nullable=True))
    op.create_index("ix_deliveries_reference", "deliveries", ["reference"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_reference", table_name="deliveries")
    op.drop_column("deliveries", "reference")
    op.drop_table("contacts")
