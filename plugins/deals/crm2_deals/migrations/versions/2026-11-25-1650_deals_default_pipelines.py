"""default pipelines and lost reasons

A fresh installation starts with a "New business" pipeline (the default),
a "Renewals" pipeline and a managed list of lost reasons.

Revision ID: 5d1e0c7a9b21
Revises: 4e3079429899
Create Date: 2026-11-25 16:50:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "5d1e0c7a9b21"
down_revision: str | None = "4e3079429899"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIPELINES = {
    "New business": (
        True,
        [
            ("Lead", 10, "open"),
            ("Qualified", 25, "open"),
            ("Proposal", 50, "open"),
            ("Negotiation", 75, "open"),
            ("Won", 100, "won"),
            ("Lost", 0, "lost"),
        ],
    ),
    "Renewals": (
        False,
        [
            ("Renewal due", 50, "open"),
            ("Quoted", 70, "open"),
            ("Renewed", 100, "won"),
            ("Lapsed", 0, "lost"),
        ],
    ),
}
LOST_REASONS = ["Price", "Competitor", "No response", "Not a fit", "Timing", "Other"]

pipeline = sa.table(
    "deals_pipeline",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("is_default", sa.Boolean()),
    sa.column("created_at", crm2_core.db.types.UtcDateTime()),
    sa.column("updated_at", crm2_core.db.types.UtcDateTime()),
    sa.column("version", sa.Integer()),
)
stage = sa.table(
    "deals_stage",
    sa.column("id", sa.Uuid()),
    sa.column("pipeline_id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("probability", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("position", sa.Integer()),
)
lost_reason = sa.table(
    "deals_lost_reason",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("active", sa.Boolean()),
)


deal = sa.table(
    "deals_deal",
    sa.column("pipeline_id", sa.Uuid()),
    sa.column("lost_reason_id", sa.Uuid()),
)


def upgrade() -> None:
    # Only what is not there: a downgrade keeps the pipelines and reasons deals still use.
    bind = op.get_bind()
    present_pipelines = set(bind.execute(sa.select(pipeline.c.name)).scalars())
    present_reasons = set(bind.execute(sa.select(lost_reason.c.name)).scalars())
    now = datetime.now(UTC)
    pipelines, stages = [], []
    for name, (is_default, steps) in PIPELINES.items():
        if name in present_pipelines:
            continue
        pipeline_id = uuid.uuid4()
        pipelines.append(
            {
                "id": pipeline_id,
                "name": name,
                "is_default": is_default,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
        for position, (stage_name, probability, kind) in enumerate(steps):
            stages.append(
                {
                    "id": uuid.uuid4(),
                    "pipeline_id": pipeline_id,
                    "name": stage_name,
                    "probability": probability,
                    "kind": kind,
                    "position": position,
                }
            )
    op.bulk_insert(pipeline, pipelines)
    op.bulk_insert(stage, stages)
    op.bulk_insert(
        lost_reason,
        [
            {"id": uuid.uuid4(), "name": n, "active": True}
            for n in LOST_REASONS
            if n not in present_reasons
        ],
    )


def downgrade() -> None:
    """The shipped pipelines and reasons no deal uses: those in use stay (foreign keys
    hold them) until ``downgrade base`` drops the tables, deals first."""
    used_pipelines = sa.select(deal.c.pipeline_id).where(deal.c.pipeline_id.is_not(None))
    used_reasons = sa.select(deal.c.lost_reason_id).where(deal.c.lost_reason_id.is_not(None))
    ids = sa.select(pipeline.c.id).where(
        pipeline.c.name.in_(list(PIPELINES)), pipeline.c.id.not_in(used_pipelines)
    )
    op.execute(stage.delete().where(stage.c.pipeline_id.in_(ids)))
    op.execute(pipeline.delete().where(pipeline.c.id.in_(ids)))
    op.execute(
        lost_reason.delete().where(
            lost_reason.c.name.in_(LOST_REASONS), lost_reason.c.id.not_in(used_reasons)
        )
    )
