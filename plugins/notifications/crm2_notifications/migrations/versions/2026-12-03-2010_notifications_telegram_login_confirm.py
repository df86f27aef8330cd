"""a linked Telegram chat may confirm its user's sign-ins (crm2_confirm_login)

Revision ID: 4f2c9b1d8e67
Revises: 0a7ee2c883cb
Create Date: 2026-12-03 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4f2c9b1d8e67"
down_revision: str | None = "0a7ee2c883cb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications_telegram_link", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("confirm_logins", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications_telegram_link", schema=None) as batch_op:
        batch_op.drop_column("confirm_logins")
