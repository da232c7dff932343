"""erased_users: the people whose account was deleted (UserDeleted), so late events store
nothing personal of them

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from shared_events import store

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    store.create_erasure_table(op)


def downgrade() -> None:
    store.drop_erasure_table(op)
