"""erased_users: the people whose account was deleted (UserDeleted), so late events store
nothing personal of them

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from shared_events import store

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    store.create_erasure_table(op)


def downgrade() -> None:
    store.drop_erasure_table(op)
