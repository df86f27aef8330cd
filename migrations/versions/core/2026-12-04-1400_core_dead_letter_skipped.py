"""dead letter skipped_at: an operator gave the event up (crm2 events dead-letters --skip)

A dead letter neither replayed nor skipped holds the later events of its subject
for its handler; skipping settles it without applying, and releases them.

Revision ID: 7d2c9a4e1b60
Revises: 5e8b1f3c7a24
Create Date: 2026-12-04 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "7d2c9a4e1b60"
down_revision: str | None = "5e8b1f3c7a24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "core_dead_letter",
        sa.Column("skipped_at", crm2_core.db.types.UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("core_dead_letter", "skipped_at")
