"""Insert several new rows of different tables in one round trip where the database allows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

# One shape: each row's table and the columns it writes, parents first.
Shape = tuple[tuple[Table, tuple[str, ...]], ...]


def _values_of(row: Any) -> tuple[Table, dict[str, Any]]:
    mapper = inspect(type(row))
    values: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        value = getattr(row, prop.key)
        if value is None and (column.primary_key or column.server_default is not None):
            continue  # the database's own (a serial key, a server default)
        values[column.name] = value
    return mapper.local_table, values


def _insert_of(number: int, table: Table, columns: tuple[str, ...]) -> Insert:
    return insert(table).values(
        {name: bindparam(f"r{number}_{name}", type_=table.c[name].type) for name in columns}
    )


@lru_cache(maxsize=256)
def _statement(shape: Shape) -> Insert:
    """The statement for ``shape``, built once: the same object each time lets SQLAlchemy
    reuse its cache key and compiled form instead of rebuilding both per request."""
    *first, (last_table, last_columns) = shape
    stmt = _insert_of(len(first), last_table, last_columns)
    for number, (table, columns) in enumerate(first):
        stmt = stmt.add_cte(_insert_of(number, table, columns).cte(f"crm2_row_{number}"))
    return stmt


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
    shape: list[tuple[Table, tuple[str, ...]]] = []
    params: dict[str, Any] = {}
    for number, row in enumerate(rows):
        table, values = _values_of(row)
        shape.append((table, tuple(values)))
        params.update((f"r{number}_{name}", value) for name, value in values.items())
    await session.execute(_statement(tuple(shape)), params)
    for row in rows:
        if row in session:
            session.expunge(row)
