"""import jobs: the status rows of background CSV imports (crm2_core.jobs.ImportJob)

Revision ID: 9c41e7a2d5b3
Revises: 3f1d2c8a9b70
Create Date: 2026-12-03 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "9c41e7a2d5b3"
down_revision: str | None = "3f1d2c8a9b70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "core_import_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", crm2_core.db.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm2_core.db.types.UtcDateTime(), nullable=False),
        sa.Column("finished_at", crm2_core.db.types.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_import_job")),
        info={"plugin": "core"},
    )
    with op.batch_alter_table("core_import_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_core_import_job_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_core_import_job_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("core_import_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_core_import_job_owner_id"))
        batch_op.drop_index(batch_op.f("ix_core_import_job_kind"))
    op.drop_table("core_import_job")
