"""documents tag keys: the tags case-folded, for a tag filter that ignores case

Revision ID: 7d1f3a9c2b60
Revises: eb532986e7eb
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d1f3a9c2b60"
down_revision: str | None = "eb532986e7eb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_documents_document_tag_keys"


def _key(tag: str) -> str:
    # written out here, not imported: a migration keeps the rule it shipped with
    return unicodedata.normalize("NFC", tag).strip().casefold()


def upgrade() -> None:
    with op.batch_alter_table("documents_document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tag_keys", sa.JSON(), nullable=True))
    bind = op.get_bind()
    document = sa.table(
        "documents_document", sa.column("id", sa.Uuid()), sa.column("tags", sa.JSON())
    )
    rows = bind.execute(sa.select(document.c.id, document.c.tags)).all()
    update = sa.text("UPDATE documents_document SET tag_keys = :keys WHERE id = :id").bindparams(
        sa.bindparam("keys", type_=sa.JSON()), sa.bindparam("id", type_=sa.Uuid())
    )
    for row in rows:
        tags = row.tags if isinstance(row.tags, list) else json.loads(row.tags or "[]")
        bind.execute(update, {"keys": [_key(t) for t in tags], "id": row.id})
    bind.execute(sa.text("UPDATE documents_document SET tag_keys = '[]' WHERE tag_keys IS NULL"))
    with op.batch_alter_table("documents_document", schema=None) as batch_op:
        batch_op.alter_column("tag_keys", existing_type=sa.JSON(), nullable=False)
    if bind.dialect.name == "postgresql":
        op.create_index(
            INDEX,
            "documents_document",
            [sa.text("CAST(tag_keys AS JSONB)")],
            postgresql_using="gin",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="documents_document", postgresql_using="gin")
    with op.batch_alter_table("documents_document", schema=None) as batch_op:
        batch_op.drop_column("tag_keys")
