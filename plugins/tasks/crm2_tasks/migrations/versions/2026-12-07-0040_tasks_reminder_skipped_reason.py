"""tasks reminder skipped reason (a reminder claimed but not sent, and why)

Revision ID: 4e2a9c6b1d07
Revises: 7d1c2b9e4a10
Create Date: 2026-12-07 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4e2a9c6b1d07"
down_revision: str | None = "7d1c2b9e4a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks_reminder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped_reason", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks_reminder", schema=None) as batch_op:
        batch_op.drop_column("skipped_reason")
