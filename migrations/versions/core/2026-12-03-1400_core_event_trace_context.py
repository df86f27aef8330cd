"""event trace context: the W3C traceparent of the request that published the event

Revision ID: 3f1d2c8a9b70
Revises: 7b06883265ce
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f1d2c8a9b70"
down_revision: str | None = "7b06883265ce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("core_event", sa.Column("trace_context", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("core_event", "trace_context")
