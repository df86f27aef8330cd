"""documents search text normalised: NFC, as titles and the q search now are

Revision ID: 2b8e6d4f1a93
Revises: 7d1f3a9c2b60
Create Date: 2026-12-07 00:55:00
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b8e6d4f1a93"
down_revision: str | None = "7d1f3a9c2b60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _search_text(title: str, tags: list[str]) -> str:
    # written out here, not imported: a migration keeps the rule it shipped with
    return unicodedata.normalize("NFC", "\n".join([title, *tags])).strip().lower()


def upgrade() -> None:
    """Titles written before were kept as sent (a decomposed é stays so: the same text
    shown); only the search text derived from them is rewritten, so ``q`` finds them."""
    bind = op.get_bind()
    document = sa.table(
        "documents_document",
        sa.column("id", sa.Uuid()),
        sa.column("title", sa.String()),
        sa.column("tags", sa.JSON()),
        sa.column("search_text", sa.Text()),
    )
    rows = bind.execute(
        sa.select(document.c.id, document.c.title, document.c.tags, document.c.search_text)
    ).all()
    for row in rows:
        tags = row.tags if isinstance(row.tags, list) else json.loads(row.tags or "[]")
        wanted = _search_text(row.title, tags)
        if wanted != row.search_text:
            bind.execute(
                sa.update(document).where(document.c.id == row.id).values(search_text=wanted)
            )


def downgrade() -> None:
    """Nothing to undo: the normalised search text is as good for the previous code."""
