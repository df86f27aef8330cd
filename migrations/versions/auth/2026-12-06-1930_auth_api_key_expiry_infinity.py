"""API key expiries stored as PostgreSQL's ±infinity moved just inside the calendar

Before UtcDateTime kept datetime.max/min one microsecond inside, asyncpg bound
them as 'infinity' and '-infinity'; such a row reads back naive, and every use
of the key failed. The values become the last and first instants the type stores.

Revision ID: 3f7b2d9c6e15
Revises: 9d4a6e2b7c13
Create Date: 2026-12-06 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "3f7b2d9c6e15"
down_revision: str | None = "9d4a6e2b7c13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENDS = (
    ("infinity", "9999-12-31 23:59:59.999998+00"),
    ("-infinity", "0001-01-01 00:00:00.000001+00"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no infinity: it stored the value as written
    for infinite, instant in _ENDS:
        op.execute(
            f"UPDATE auth_api_key SET expires_at = TIMESTAMPTZ '{instant}' "
            f"WHERE expires_at = TIMESTAMPTZ '{infinite}'"
        )


def downgrade() -> None:
    pass  # the old values failed every use: nothing to put back
