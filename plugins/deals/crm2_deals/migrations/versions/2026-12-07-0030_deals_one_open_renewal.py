"""one open renewal per policy

A policy has at most one draft or active renewal. The service checked it before
inserting, and two ``/renew`` calls at once both passed the check: a partial
unique index makes the database refuse the second (SQLite and PostgreSQL both
support ``CREATE UNIQUE INDEX … WHERE``).

Revision ID: 8272d6f10a27
Revises: 5d1e0c7a9b21
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8272d6f10a27"
down_revision: str | None = "5d1e0c7a9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('draft', 'active')"


def upgrade() -> None:
    # Which open renewal to keep is the operator's call, not a migration's: name them.
    doubled = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT renewal_of, COUNT(*) FROM deals_policy "
                f"WHERE renewal_of IS NOT NULL AND {OPEN} GROUP BY renewal_of HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if doubled:
        named = ", ".join(f"{policy} ({count} open renewals)" for policy, count in doubled[:20])
        raise RuntimeError(
            "deals: these policies have more than one draft or active renewal: "
            f"{named}. Cancel all but one of each (POST /api/v1/deals/policies/{{id}}/cancel), "
            "then run crm2 migrate again."
        )
    op.create_index(
        "uq_deals_policy_open_renewal",
        "deals_policy",
        ["renewal_of"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_deals_policy_open_renewal", table_name="deals_policy")
