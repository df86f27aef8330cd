"""sign-ins waiting for out-of-band confirmation (crm2_confirm_login)

Revision ID: 9d4a6e2b7c13
Revises: 5b2e8c4a1f90
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "9d4a6e2b7c13"
down_revision: str | None = "5b2e8c4a1f90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_challenge",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", crm2_core.db.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", crm2_core.db.types.UtcDateTime(), nullable=False),
        sa.Column("decided_at", crm2_core.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_user.id"],
            name=op.f("fk_auth_login_challenge_user_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_login_challenge")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_auth_login_challenge_secret_hash")),
        info={"plugin": "auth"},
    )
    with op.batch_alter_table("auth_login_challenge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_login_challenge_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_login_challenge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_login_challenge_user_id"))
    op.drop_table("auth_login_challenge")
