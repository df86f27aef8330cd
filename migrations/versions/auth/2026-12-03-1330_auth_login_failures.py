"""failed sign-ins per account and address (progressive delays)

Revision ID: 5b2e8c4a1f90
Revises: 3c1f0a9d7e21
Create Date: 2026-12-03 13:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "5b2e8c4a1f90"
down_revision: str | None = "3c1f0a9d7e21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_failure",
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", crm2_core.db.types.UtcDateTime(), nullable=False),
        sa.Column("blocked_until", crm2_core.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "address", name=op.f("pk_auth_login_failure")),
        info={"plugin": "auth"},
    )


def downgrade() -> None:
    op.drop_table("auth_login_failure")
