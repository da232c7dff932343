"""users.email_verified_at: when the account's e-mail address was shown to be its owner's

Accounts made before have none: they are unverified until their owner verifies (docs/
ARCHITECTURE.md, "Verified e-mail addresses").

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
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("users", "email_verified_at")
