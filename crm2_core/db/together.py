"""Insert several new rows of different tables in one round trip where the database allows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import CTE, ColumnElement, Table, bindparam, insert, inspect, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from crm2_core.db.direct import driver_statement, run_on_driver, session_unbegun, unbegun
from crm2_core.db.held import write_at_commit

# One shape: each row's table and the columns it writes, parents first.
Shape = tuple[tuple[Table, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class NewRow:
    """A new row as plain column values: what ``insert_together`` writes without an ORM
    object (building a SQLModel table object costs more than the row's whole INSERT)."""

    table: Table
    values: dict[str, Any]


@lru_cache(maxsize=256)
def _defaults(model: type) -> tuple[tuple[str, Any, Callable[[], Any] | None, bool], ...]:
    """``(column, default, default_factory, the table's own)`` of each of ``model``'s
    fields that is a column; "the table's own": no field default, but a column default
    (``Column(default=…)`` or a server default) the INSERT applies when it is left out."""
    columns = model.__table__.columns  # type: ignore[attr-defined]
    out = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        if name not in columns:
            continue
        factory = field.default_factory
        default = None if field.default is PydanticUndefined else field.default
        column = columns[name]
        omitted = factory is None and default is None and column.default is not None
        omitted = omitted or (factory is None and default is None and column.server_default)
        out.append((name, default, factory, bool(omitted)))
    return tuple(out)


def new_row(model: type, **values: Any) -> NewRow:
    """``values`` with ``model``'s Python-side defaults filled in (ids, times, versions),
    as constructing ``model(**values)`` would, minus the object."""
    filled = {}
    for name, default, factory, omitted in _defaults(model):
        if name in values:
            filled[name] = values[name]
        elif not omitted:
            filled[name] = factory() if factory is not None else default
    return NewRow(model.__table__, filled)  # type: ignore[attr-defined]


def _values_of(row: Any) -> tuple[Table, dict[str, Any]]:
    if isinstance(row, NewRow):
        table, source = row.table, row.values
        pairs = ((table.c[name], value) for name, value in source.items())
    else:
        mapper = inspect(type(row))
        table = mapper.local_table
        pairs = ((prop.columns[0], getattr(row, prop.key)) for prop in mapper.column_attrs)
    values: dict[str, Any] = {}
    for column, value in pairs:
        if value is None and (column.primary_key or column.server_default is not None):
            continue  # the database's own (a serial key, a server default)
        values[column.name] = value
    return table, values


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


# (shape, condition) -> (the condition, its statement); keyed by the condition's identity
# (a clause's ``==`` builds SQL), and the condition kept so that identity stays its own
_GUARDED: dict[tuple[Shape, int], tuple[ColumnElement[bool], Insert]] = {}
_GUARDED_MOST = 256


def _guarded_insert_of(number: int, table: Table, columns: tuple[str, ...], guard: CTE) -> Insert:
    values = select(
        *(bindparam(f"r{number}_{name}", type_=table.c[name].type) for name in columns)
    ).select_from(guard)
    return insert(table).from_select(list(columns), values)


def _guarded_statement(shape: Shape, condition: ColumnElement[bool]) -> Insert:
    """``shape``'s rows as ``INSERT … SELECT … FROM crm2_guard``, where ``crm2_guard`` is
    one row when ``condition`` holds and none otherwise; the last row's INSERT returns a
    row when it wrote. Built once per shape and condition, as ``_statement``."""
    key = (shape, id(condition))
    cached = _GUARDED.get(key)
    if cached is not None and cached[0] is condition:
        return cached[1]
    guard = select(literal_column("1").label("crm2_ok")).where(condition).cte("crm2_guard")
    *first, (last_table, last_columns) = shape
    stmt = _guarded_insert_of(len(first), last_table, last_columns, guard)
    stmt = stmt.returning(literal_column("1"))
    for number, (table, columns) in enumerate(first):
        cte = _guarded_insert_of(number, table, columns, guard).cte(f"crm2_row_{number}")
        stmt = stmt.add_cte(cte)
    if len(_GUARDED) >= _GUARDED_MOST:
        _GUARDED.clear()
    _GUARDED[key] = (condition, stmt)
    return stmt


def _shape_of(rows: Sequence[Any]) -> tuple[Shape, dict[str, Any]]:
    shape: list[tuple[Table, tuple[str, ...]]] = []
    params: dict[str, Any] = {}
    for number, row in enumerate(rows):
        table, values = _values_of(row)
        shape.append((table, tuple(values)))
        params.update((f"r{number}_{name}", value) for name, value in values.items())
    return tuple(shape), params


async def _one_by_one(session: AsyncSession, rows: Sequence[Any]) -> None:
    """In order: ORM objects flushed, plain rows as one INSERT each (after the flush)."""
    for row in rows:
        if isinstance(row, NewRow):
            await session.flush()
            table, values = _values_of(row)
            await session.execute(insert(table), values)
        else:
            session.add(row)
    await session.flush()


async def insert_together(session: AsyncSession, rows: Sequence[Any]) -> None:
    """Write ``rows`` (new ORM objects or ``NewRow``s, in dependency order: a parent
    before its children).

    On PostgreSQL one statement does it: the rows but the last as data-modifying CTEs
    of the last one's INSERT (foreign keys are checked at the end of the statement, so a
    child may name a parent of the same statement). The ORM objects then leave the
    session: the statement writes them, and a later flush must not write them again;
    they keep their values (ids and Python-side defaults; not database-side defaults
    such as serial keys). Elsewhere (SQLite) they are written one by one, in order.

    When nothing of the session's transaction was sent yet, the statement waits for
    the session's commit and is sent there alone, without ``BEGIN``/``COMMIT``, if
    nothing else is written; else ahead of whatever comes next (``held``). Its errors
    then surface at that point.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql" or len(rows) == 1:
        await _one_by_one(session, rows)
        return
    shape, params = _shape_of(rows)
    await write_at_commit(session, _statement(shape), params)
    for row in rows:
        if not isinstance(row, NewRow) and row in session:
            session.expunge(row)


def can_write_alone(session: AsyncSession) -> bool:
    """Could ``insert_together_if`` send rows alone on ``session`` now: PostgreSQL,
    nothing of its transaction sent or held yet, no ORM change waiting for a flush?
    Cheap (no connection is checked out): ask it before work only that path needs.
    ``insert_together_if`` may still answer ``False`` (a statement listener)."""
    sync = session.sync_session
    return (
        session.get_bind().dialect.name == "postgresql"
        and not (sync.new or sync.dirty or sync.deleted)
        and session_unbegun(session)
    )


async def insert_together_if(
    session: AsyncSession,
    rows: Sequence[NewRow],
    condition: ColumnElement[bool],
    params: Mapping[str, Any],
) -> bool:
    """Write ``rows`` (``NewRow``s, as ``insert_together`` does) only if ``condition``
    holds, checked in the statement that writes them, and sent now as a transaction of
    its own: one round trip for a create whose reads are a guess (a stage cached by the
    process) that the write itself can verify. ``params``: the condition's parameters.

    Only where ``can_write_alone`` says so: PostgreSQL through the driver, nothing of
    the session's transaction sent, held or pending, READ COMMITTED. Then the caller
    must write nothing more in this transaction: the rows are committed as the
    statement ends, whatever the session does next (a rollback keeps them). ``False``:
    nothing was written, because the condition did not hold or the session cannot send
    the rows alone; the caller then takes its usual path (reads, then
    ``insert_together``).

    Build ``condition`` once per shape (an ``lru_cache``d clause with bound
    parameters): the statement is cached per condition object. Its parameter names
    must differ from the rows' (``r<number>_<column>``).
    """
    if not rows or not can_write_alone(session):
        return False
    if not all(isinstance(row, NewRow) for row in rows):
        raise TypeError("insert_together_if writes NewRow values (new_row), not ORM objects")
    shape, values = _shape_of(rows)
    if clash := values.keys() & params.keys():
        raise ValueError(f"condition parameters named like the rows' values: {sorted(clash)}")
    statement = _guarded_statement(shape, condition)
    direct = await driver_statement(session, statement, {**values, **params})
    if direct is None or not unbegun(direct):
        return False
    return bool(await run_on_driver(direct, statement, alone=True))
