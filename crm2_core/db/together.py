"""Insert several new rows of different tables in one round trip where the database allows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def _insert_of(row: Any) -> Insert:
    mapper = inspect(type(row))
    values: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        value = getattr(row, prop.key)
        if value is None and (column.primary_key or column.server_default is not None):
            continue  # the database's own (a serial key, a server default)
        values[column.name] = value
    return insert(mapper.local_table).values(values)


async def insert_together(session: AsyncSession, rows: Sequence[Any]) -> None:
    """Write ``rows`` (new ORM objects, in dependency order: a parent before its children).

    On PostgreSQL one statement does it: the rows but the last as data-modifying CTEs
    of the last one's INSERT (foreign keys are checked at the end of the statement, so a
    child may name a parent of the same statement). The rows then leave the session:
    they are written, and a later flush must not write them again; they keep their
    values (ids and Python-side defaults; not database-side defaults such as serial
    keys). Elsewhere (SQLite) they are added and flushed as usual.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql" or len(rows) == 1:
        session.add_all(rows)
        await session.flush()
        return
    *first, last = rows
    stmt = _insert_of(last)
    for number, row in enumerate(first):
        stmt = stmt.add_cte(_insert_of(row).cte(f"crm2_row_{number}"))
    await session.execute(stmt)
    for row in rows:
        if row in session:
            session.expunge(row)
