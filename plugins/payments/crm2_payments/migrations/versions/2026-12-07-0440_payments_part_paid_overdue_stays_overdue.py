"""payments: a part-paid payment the overdue job marked is overdue again

A part payment on an overdue payment used to make it ``partially_paid`` while its
``overdue_at`` stayed set: the overdue job (which marks a payment once) never marked it
again, and what was still owed dropped out of the balances' ``overdue``. Money moved now
leaves such a payment ``overdue``; this gives the payments left behind the same status.
Data only: the downgrade has nothing to undo (``overdue`` is a status of every schema).

Revision ID: c4d2e3f5a6b7
Revises: b3c1d2e4f5a6
Create Date: 2026-12-07 04:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c4d2e3f5a6b7"
down_revision: str | None = "b3c1d2e4f5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE payments_payment SET status = 'overdue', version = version + 1 "
        "WHERE status = 'partially_paid' AND overdue_at IS NOT NULL "
        "AND paid_minor - refunded_minor < amount_minor"
    )


def downgrade() -> None:
    pass
