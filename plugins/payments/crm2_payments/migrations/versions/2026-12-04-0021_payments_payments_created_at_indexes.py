"""payments created_at indexes (the list's default sort, -created_at, without a sort)

Revision ID: a8f4259944ad
Revises: a79310e68129
Create Date: 2026-12-04 00:21:23.255195
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "a8f4259944ad"
down_revision: str | None = "a79310e68129"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments_payment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payments_payment_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_payments_payment_owner_id_created_at_id"),
            ["owner_id", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("payments_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_payment_owner_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_payments_payment_created_at_id"))
