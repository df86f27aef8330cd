"""backup set progress (POST /sets answers 202; pollers read per-target progress)

Revision ID: 3c1f0b7d9a52
Revises: 8720b22163b8
Create Date: 2026-12-03 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c1f0b7d9a52"
down_revision: str | None = "8720b22163b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backup_set", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("backup_set", schema=None) as batch_op:
        batch_op.drop_column("progress")
