"""a linked Telegram chat that blocked the bot is disabled, the reason kept

Revision ID: 3f7a711a3321
Revises: 4f2c9b1d8e67
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm2_core.api import UtcDateTime

revision: str = "3f7a711a3321"
down_revision: str | None = "4f2c9b1d8e67"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications_telegram_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_reason", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications_telegram_link", schema=None) as batch_op:
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("disabled_at")
