"""import job ignored_columns: the header's unknown columns, as the synchronous report names them

Revision ID: 4b9e2d7c1a38
Revises: 7d2c9a4e1b60
Create Date: 2026-12-07 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b9e2d7c1a38"
down_revision: str | None = "7d2c9a4e1b60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("core_import_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ignored_columns", sa.JSON(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("core_import_job", schema=None) as batch_op:
        batch_op.drop_column("ignored_columns")
