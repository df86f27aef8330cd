"""indexes the retention pruning walks: feed entries by age, deliveries by their entry

Revision ID: 7c1d2e3f4a5b
Revises: 4deae794b01a
Create Date: 2026-12-07 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "7c1d2e3f4a5b"
down_revision: str | None = "4deae794b01a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_notification_created_at_id"),
            ["created_at", "id"],
            unique=False,
        )
    with op.batch_alter_table("notifications_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_delivery_notification_id"),
            ["notification_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_delivery_notification_id"))
    with op.batch_alter_table("notifications_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_notification_created_at_id"))
