"""payments: an allocation's provider identity includes its kind

A provider refunds under the transaction id of the charge it pays back: unique on
``(provider, external_id)``, that refund was taken for the receipt and never booked.
The identity is ``(provider, kind, external_id)`` now.

Revision ID: e6f4a5b7c8d9
Revises: d5e3f4a6b7c8
Create Date: 2026-12-07 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "e6f4a5b7c8d9"
down_revision: str | None = "d5e3f4a6b7c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments_allocation", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_payments_allocation_provider_external_id"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_payments_allocation_provider_kind_external_id"),
            ["provider", "kind", "external_id"],
        )


def downgrade() -> None:
    # Fails while a refund shares its receipt's transaction id: that refund has no place
    # in the old identity (remove or rename it first).
    with op.batch_alter_table("payments_allocation", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_payments_allocation_provider_kind_external_id"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_payments_allocation_provider_external_id"),
            ["provider", "external_id"],
        )
