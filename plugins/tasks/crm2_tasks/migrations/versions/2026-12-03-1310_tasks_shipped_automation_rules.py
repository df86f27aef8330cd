"""shipped automation rules (inactive until an admin switches them on)

Revision ID: 7d1c2b9e4a10
Revises: cf58d090bdf1
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "7d1c2b9e4a10"
down_revision: str | None = "cf58d090bdf1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# fixed ids, so that every installation names the shipped rules alike
IDS = {
    "deals-follow-up": uuid.UUID("5b0f6a52-0d1e-4c38-9a47-0c1b2a7e0001"),
    "deals-policy-renewal": uuid.UUID("5b0f6a52-0d1e-4c38-9a47-0c1b2a7e0002"),
}

rules = sa.table(
    "tasks_rule",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("on_event", sa.String()),
    sa.column("conditions", sa.JSON()),
    sa.column("action", sa.JSON()),
    sa.column("enabled", sa.Boolean()),
    sa.column("builtin_key", sa.String()),
    sa.column("created_at", crm2_core.db.types.UtcDateTime()),
    sa.column("updated_at", crm2_core.db.types.UtcDateTime()),
    sa.column("version", sa.Integer()),
)


SHIPPED_RULES: list[dict[str, Any]] = [
    {
        "builtin_key": "deals-follow-up",
        "name": "Follow up a new deal",
        "on_event": "deals.deal.created",
        "conditions": [],
        "action": {
            "title": "Follow up: {data.title}",
            "description": "A new deal was created; call the client within a business day.",
            "assignee": "{data.owner_id}",
            "due_in": "1 business day",
            "priority": "normal",
            "tags": ["follow-up"],
            "link": {"kind": "deals.deal", "id": "{subject}"},
        },
    },
    {
        "builtin_key": "deals-policy-renewal",
        "name": "Renew a policy coming due",
        "on_event": "deals.policy.renewal_due",
        "conditions": [],
        "action": {
            "title": "Renewal: policy ends {data.end_date} ({data.days_left} days left)",
            "description": "Prepare the renewal offer and contact the client.",
            "assignee": "{data.owner_id}",
            "due_in": "2 business days",
            "priority": "high",
            "tags": ["renewal"],
            "link": {"kind": "deals.policy", "id": "{subject}"},
        },
    },
]


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        rules,
        [
            {
                **rule,
                "id": IDS[rule["builtin_key"]],
                "enabled": False,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for rule in SHIPPED_RULES
        ],
    )


def downgrade() -> None:
    op.execute(rules.delete().where(rules.c.builtin_key.in_(list(IDS))))
