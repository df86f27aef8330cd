"""documents search text case-folded (``straße`` is found by ``strasse``), as tags are

Revision ID: 5c0a7e3d9b14
Revises: 2b8e6d4f1a93
Create Date: 2026-12-07 03:10:00
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c0a7e3d9b14"
down_revision: str | None = "2b8e6d4f1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# written out here, not imported: a migration keeps the rules it shipped with
def _folded(title: str, tags: list[str]) -> str:
    return unicodedata.normalize("NFC", "\n".join([title, *tags])).strip().casefold()


def _lowered(title: str, tags: list[str]) -> str:
    return unicodedata.normalize("NFC", "\n".join([title, *tags])).strip().lower()


def _rewrite(rule: Callable[[str, list[str]], str]) -> None:
    """The search text derived again from each document's title and tags by ``rule``."""
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
    )
    changed = []
    for row in rows:
        tags = row.tags if isinstance(row.tags, list) else json.loads(row.tags or "[]")
        wanted = rule(row.title, tags)
        if wanted != row.search_text:
            changed.append((row.id, wanted))
    for document_id, wanted in changed:
        bind.execute(
            sa.update(document).where(document.c.id == document_id).values(search_text=wanted)
        )


def upgrade() -> None:
    _rewrite(_folded)


def downgrade() -> None:
    """Back to the lower-cased text the previous code searches."""
    _rewrite(_lowered)
