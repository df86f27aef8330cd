"""a webhook subscription the receiver answered 410 Gone is switched off, the reason kept

Revision ID: 4deae794b01a
Revises: 3f7a711a3321
Create Date: 2026-12-07 01:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4deae794b01a"
down_revision: str | None = "3f7a711a3321"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications_webhook", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_reason", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications_webhook", schema=None) as batch_op:
        batch_op.drop_column("disabled_reason")
