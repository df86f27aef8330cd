"""Many new rows of one table at once: ``COPY`` on PostgreSQL, one ``executemany`` elsewhere.

An ``executemany`` of an ``INSERT`` makes PostgreSQL bind and execute the statement
once per row, and SQLAlchemy build and process each row's parameters on the way:
for a bulk writer (a CSV import: clients, their e-mail rows, their events) that is
most of the cost of a row. ``COPY … FROM STDIN (FORMAT binary)`` streams the rows
to one command instead; bench scenario 11 measures the difference.

The rows are sent on the session's own connection, inside its transaction, so they
commit or roll back with everything else the transaction wrote (an outbox event
with the change it describes). Each value goes through its column type's bind
processing as an ``INSERT`` would (JSON text, UTC times), and a column a row leaves
out gets the column's default (``Column(default=…)`` in Python, else the server's:
a serial key), so either path stores the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

# Fewer rows than this go as an executemany: COPY's extra round trip (the copy-in
# handshake) costs more than it saves on a handful of rows.
COPY_FROM_ROWS = 16

# (column, the row's key or None when the column's Python default fills it,
#  its default (a callable taking no argument) or None, its bind processor or None)
_Slot = tuple[str, str | None, Callable[[], Any] | None, Callable[[Any], Any] | None]


def _python_default(table: Table, name: str) -> Callable[[], Any] | None:
    default = table.c[name].default
    if default is None or not (default.is_scalar or default.is_callable):
        return None  # a sequence or a SQL expression: the server's
    arg = default.arg  # type: ignore[attr-defined]
    if default.is_scalar:
        return lambda: arg
    return lambda: arg(None)  # SQLAlchemy wraps a zero-argument default to take a context


@lru_cache(maxsize=64)
def _slots(table: Table, keys: tuple[str, ...], dialect: Dialect) -> tuple[_Slot, ...]:
    """The columns COPY writes for rows with ``keys``: given, or filled by a Python default."""
    slots: list[_Slot] = []
    for column in table.columns:
        given = column.name in keys
        default = None if given else _python_default(table, column.name)
        if not given and default is None:
            continue  # NULL or the server's default, as an INSERT without it
        process = column.type._cached_bind_processor(dialect)
        slots.append((column.name, column.name if given else None, default, process))
    return tuple(slots)


def _records(
    rows: Sequence[Mapping[str, Any]], slots: tuple[_Slot, ...]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns COPY writes and each row's values in their order: the row's own values
    first, taken together, then those the columns' Python defaults fill. Each value goes
    through its column's processor, None too, as an INSERT's parameters do (a JSON column
    stores None as JSON null)."""
    given = [slot for slot in slots if slot[1] is not None]
    filled = [slot for slot in slots if slot[1] is None]
    keys = [key for _, key, _, _ in given if key is not None]
    fetch: Callable[[Mapping[str, Any]], Any] = itemgetter(*keys)
    if len(keys) == 1:  # itemgetter of one key returns the value itself
        (key,) = keys

        def fetch(row: Mapping[str, Any]) -> tuple[Any, ...]:
            return (row[key],)

    processed = [(i, process) for i, (_, _, _, process) in enumerate(given) if process]
    defaults = [(default, process) for _, _, default, process in filled]
    records = []
    for row in rows:
        values = fetch(row)
        if processed:
            values = list(values)
            for i, process in processed:
                values[i] = process(values[i])
        if defaults:
            values = [*values, *(p(d()) if p else d() for d, p in defaults)]  # type: ignore[misc]
        records.append(tuple(values))
    return [name for name, *_ in given + filled], records


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (column → value, every row with the same keys) into ``table``, in
    order, in the session's transaction, after what the session holds (flushed first).
    Nothing is returned: give the rows their ids.

    On PostgreSQL (asyncpg) from :data:`COPY_FROM_ROWS` rows on, one ``COPY``; an error
    then comes as the driver's (``asyncpg``) exception, not SQLAlchemy's, and the
    transaction can only be rolled back. Elsewhere, and for fewer rows, one
    ``executemany`` of an ``INSERT``.
    """
    if not rows:
        return
    unknown = [key for key in rows[0] if key not in table.c]
    if unknown:  # an INSERT would leave them out without a word
        raise KeyError(f"{table.name} has no column(s) {unknown}")
    # what the session holds goes first, as before an ``execute`` (autoflush): an
    # event ``publish`` added keeps its place before these in the log
    await session.flush()
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.driver != "asyncpg" or len(rows) < COPY_FROM_ROWS:
        await connection.execute(insert(table), list(rows))
        return
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy begins the driver's transaction with its first statement: COPY on
        # a fresh transaction would otherwise commit on its own
        await connection.execute(text("SELECT 1"))
    columns, records = _records(rows, _slots(table, tuple(rows[0]), dialect))
    await driver.copy_records_to_table(
        table.name, records=records, columns=columns, schema_name=table.schema
    )
