"""clients' search text folded as the core folds text

``q`` compared a ``str.lower()`` copy of the client's name, e-mails and phones: a
final sigma stayed ``ς`` and a dotted capital I became two characters, where the
core's ``fold_text`` (and SQL ``folded``) write the plain sigma and ``i``. The service now
stores ``fold_text``'s form; this rewrites the rows stored before (only those whose
text changes). Downgrade leaves them: the old search reads the new form as well as
ASCII text, so nothing is lost.

Revision ID: 6c0f2b9e4a17
Revises: 8272d6f10a27
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "6c0f2b9e4a17"
down_revision: str | None = "8272d6f10a27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
_NOT_DIGITS = re.compile(r"\D")
# A frozen copy of the rule (crm2_core's fold_text as of this revision): a migration
# must write what it wrote the day it was made.
_ONE_LETTER = str.maketrans({"\u0130": "i"})

CLIENT = sa.table(
    "deals_client",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("emails", sa.JSON()),
    sa.column("phones", sa.JSON()),
    sa.column("search_text", sa.Text()),
)


def _fold(text: str) -> str:
    return text.translate(_ONE_LETTER).lower().replace("\u03c2", "\u03c3")


def _search_text(name: str, emails: list[str], phones: list[str]) -> str:
    digits = [_NOT_DIGITS.sub("", p) for p in phones]
    return _fold(" ".join([name, *emails, *phones, *[d for d in digits if d]]))


def upgrade() -> None:
    bind = op.get_bind()
    after: Any = None
    while True:
        stmt = sa.select(CLIENT).order_by(CLIENT.c.id).limit(BATCH)
        if after is not None:
            stmt = stmt.where(CLIENT.c.id > after)
        rows = bind.execute(stmt).all()
        if not rows:
            return
        for row in rows:
            folded = _search_text(row.name, row.emails or [], row.phones or [])
            if folded != row.search_text:
                bind.execute(
                    sa.update(CLIENT).where(CLIENT.c.id == row.id).values(search_text=folded)
                )
        after = rows[-1].id


def downgrade() -> None:
    pass
