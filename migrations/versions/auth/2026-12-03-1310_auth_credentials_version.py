"""credentials version on users, the creating key on API keys

Revision ID: 3c1f0a9d7e21
Revises: 845e7a49c387
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c1f0a9d7e21"
down_revision: str | None = "845e7a49c387"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "credentials_version", sa.Integer(), nullable=False, server_default=sa.text("1")
            )
        )
    with op.batch_alter_table("auth_api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by_key", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_auth_api_key_created_by_key"), ["created_by_key"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_auth_api_key_created_by_key_auth_api_key"),
            "auth_api_key",
            ["created_by_key"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_api_key", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_auth_api_key_created_by_key_auth_api_key"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_auth_api_key_created_by_key"))
        batch_op.drop_column("created_by_key")
    with op.batch_alter_table("auth_user", schema=None) as batch_op:
        batch_op.drop_column("credentials_version")
