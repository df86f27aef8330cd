"""tasks admin name keys: calendar, SLA policy and rule names unique in any case, in the database

The services checked names case-insensitively before writing, but the tables only held
``name`` unique as written, so two concurrent creates of "Élan" and "élan" both passed.
Each table gets ``name_key`` (the name in NFC, case-folded) with a unique constraint.
Rows that already collide stop the upgrade with a message naming them: rename one, then
migrate again.

Revision ID: 9b3e5d7f1a24
Revises: 4e2a9c6b1d07
Create Date: 2026-12-07 03:10:00
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b3e5d7f1a24"
down_revision: str | None = "4e2a9c6b1d07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {
    "tasks_calendar": "calendars",
    "tasks_sla_policy": "SLA policies",
    "tasks_rule": "automation rules",
}


def _key(name: str) -> str:
    # written out here, not imported: a migration keeps the rule it shipped with
    return unicodedata.normalize("NFC", name).casefold()


def _keys(bind: sa.Connection, table_name: str) -> dict[object, str]:
    """Each row's key by id; stops the upgrade if two rows' names are one in any case."""
    table = sa.table(table_name, sa.column("id", sa.Uuid()), sa.column("name", sa.String()))
    rows = bind.execute(sa.select(table.c.id, table.c.name).order_by(table.c.name)).all()
    by_key: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_key[_key(row.name)].append(f"{row.name!r} (id {row.id})")
    clashes = [names for names in by_key.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(" and ".join(names) for names in clashes)
        raise RuntimeError(
            f"{table_name}: these {TABLES[table_name]} have names that differ only in case, "
            f"which names must not: {listed}. Rename all but one of each (PATCH "
            "/api/v1/tasks/…/{id}), then run the migration again."
        )
    return {row.id: _key(row.name) for row in rows}


def upgrade() -> None:
    bind = op.get_bind()
    keys = {table_name: _keys(bind, table_name) for table_name in TABLES}  # check all first
    for table_name, by_id in keys.items():
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.add_column(sa.Column("name_key", sa.String(length=800), nullable=True))
        update = sa.text(f"UPDATE {table_name} SET name_key = :key WHERE id = :id").bindparams(
            sa.bindparam("id", type_=sa.Uuid())
        )
        for row_id, key in by_id.items():
            bind.execute(update, {"key": key, "id": row_id})
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.alter_column("name_key", existing_type=sa.String(length=800), nullable=False)
            batch_op.create_unique_constraint(batch_op.f(f"uq_{table_name}_name_key"), ["name_key"])


def downgrade() -> None:
    for table_name in TABLES:
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"uq_{table_name}_name_key"), type_="unique")
            batch_op.drop_column("name_key")
