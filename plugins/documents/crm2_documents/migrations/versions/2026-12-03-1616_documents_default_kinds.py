"""the shipped document kinds: policy, contract, identity, invoice, other

Revision ID: 5c2d7e81a9b3
Revises: 1ea8f1ffe622
Create Date: 2026-12-03 16:16:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import crm2_core.db.types

revision: str = "5c2d7e81a9b3"
down_revision: str | None = "1ea8f1ffe622"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Written out here, not imported: a migration keeps the data it shipped with.
DEFAULT_KINDS: list[dict[str, Any]] = [
    {"key": "policy", "title": "Policy", "allowed_types": [PDF, PNG, JPEG, "image/tiff"]},
    {"key": "contract", "title": "Contract", "allowed_types": [PDF, DOCX, PNG, JPEG]},
    {"key": "identity", "title": "Identity document", "allowed_types": [PDF, PNG, JPEG]},
    {"key": "invoice", "title": "Invoice", "allowed_types": [PDF, PNG, JPEG, XLSX]},
    {
        "key": "other",
        "title": "Other",
        "allowed_types": [PDF, PNG, JPEG, "image/gif", "image/webp", "text/plain", "text/csv",
                          DOCX, XLSX, "application/zip"],
    },
]  # fmt: skip

kinds = sa.table(
    "documents_kind",
    sa.column("key", sa.String()),
    sa.column("title", sa.String()),
    sa.column("allowed_types", sa.JSON()),
    sa.column("active", sa.Boolean()),
    sa.column("created_at", crm2_core.db.types.UtcDateTime()),
    sa.column("updated_at", crm2_core.db.types.UtcDateTime()),
    sa.column("version", sa.Integer()),
)


documents = sa.table("documents_document", sa.column("kind", sa.String()))


def upgrade() -> None:
    # Only the kinds not there: a downgrade keeps those that documents still use.
    present = set(op.get_bind().execute(sa.select(kinds.c.key)).scalars())
    now = datetime.now(UTC)
    op.bulk_insert(
        kinds,
        [
            {**kind, "active": True, "created_at": now, "updated_at": now, "version": 1}
            for kind in DEFAULT_KINDS
            if kind["key"] not in present
        ],
    )


def downgrade() -> None:
    """The shipped kinds no document uses: one in use stays (a foreign key holds it)
    until ``downgrade base`` drops the tables, documents first."""
    keys = [kind["key"] for kind in DEFAULT_KINDS]
    in_use = sa.select(documents.c.kind).where(documents.c.kind.is_not(None))
    op.execute(kinds.delete().where(kinds.c.key.in_(keys), kinds.c.key.not_in(in_use)))
