"""payments: a policy's activation refused for its owner is held for a later hand-over

An activation whose policy owner may not own payments made no schedule, and none was
ever made when the policy later passed to an owner who may. The refused activation's
data is kept on ``payments_policy_ref`` now, and the hand-over builds the schedule.

Revision ID: d5e3f4a6b7c8
Revises: c4d2e3f5a6b7
Create Date: 2026-12-07 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5e3f4a6b7c8"
down_revision: str | None = "c4d2e3f5a6b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments_policy_ref", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_activation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments_policy_ref", schema=None) as batch_op:
        batch_op.drop_column("held_activation")
