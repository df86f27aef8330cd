"""handler cursor delivered_through: how far the relay handed a handler's events to its queue

With RabbitMQ or Redis, events relayed while a handler's plugin was switched off
never reached its queue; a process that starts with the handler re-sends the
ones after this watermark (crm2_core.events.dramatiq_broker.catch_up).

Revision ID: 5e8b1f3c7a24
Revises: 9c41e7a2d5b3
Create Date: 2026-12-03 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e8b1f3c7a24"
down_revision: str | None = "9c41e7a2d5b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "core_handler_cursor", sa.Column("delivered_through", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("core_handler_cursor", "delivered_through")
