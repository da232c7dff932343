"""order_changes: every step added to an order's timeline notifies its id, on commit

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL delivers a notification when the transaction commits (never if it rolls back),
    # once however many identical ones it raised. order_service.live listens.
    op.execute(
        """
        CREATE FUNCTION notify_order_changes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('order_changes', NEW.order_id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER order_timeline_notify AFTER INSERT ON order_timeline
        FOR EACH ROW EXECUTE FUNCTION notify_order_changes()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER order_timeline_notify ON order_timeline")
    op.execute("DROP FUNCTION notify_order_changes()")
