"""payments commission entries of an amount change (allocation_id nullable)

A PATCH of a premium's amount can make it paid in full (or no longer so) without money
moving; the commission it earns then changes, and the entry that books the difference
has no allocation.

Revision ID: b3c1d2e4f5a6
Revises: a8f4259944ad
Create Date: 2026-12-07 03:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b3c1d2e4f5a6"
down_revision: str | None = "a8f4259944ad"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments_commission", schema=None) as batch_op:
        batch_op.alter_column("allocation_id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    # the previous schema cannot hold an entry without an allocation: they go (the
    # commission of those premiums is then what the money moved on them earned)
    op.execute("DELETE FROM payments_commission WHERE allocation_id IS NULL")
    with op.batch_alter_table("payments_commission", schema=None) as batch_op:
        batch_op.alter_column("allocation_id", existing_type=sa.Uuid(), nullable=False)
