"""A hot Core ``SELECT`` sent straight through asyncpg on PostgreSQL.

For the few reads every page load makes (``/auth/me``): SQLAlchemy's execute path
(a greenlet hop, the execution context, the result's row processing) costs about as
much CPU as asyncpg's own round trip. The statement stays the one Core statement:
compiled once per dialect by SQLAlchemy (the same SQL, bind casts included), and
each column's own result processing (``UtcDateTime``) applied to the driver's values.
Other databases run it through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.util import greenlet_spawn

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind parameter names, in ``$n`` order
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]


class ReadConnection:
    """A pooled connection for one request that only reads (``http.deps.read_connection``).

    On asyncpg it is the pool's driver connection itself, taken and given back without
    a SQLAlchemy ``Connection`` around it: building, starting and closing one (its
    execution options, isolation level set and reset, events) cost a third of
    ``/auth/me``'s own CPU, for a route that sends one statement past it anyway
    (:class:`DirectSelect`). No transaction is begun: the driver runs each statement
    by itself, as the read engine would. Other drivers get a SQLAlchemy connection on
    the read engine (``sqlalchemy``). Never write through either.

    ``async with ReadConnection(engine, read_engine) as connection:`` takes it and gives
    it back (or ``open`` and ``close``).
    """

    __slots__ = ("_engine", "_pooled", "_read_engine", "dialect", "driver", "sqlalchemy")

    def __init__(self, engine: AsyncEngine, read_engine: AsyncEngine) -> None:
        self._engine, self._read_engine = engine, read_engine
        self.dialect: Dialect = engine.dialect
        self.driver: Any = None  # the asyncpg connection
        self.sqlalchemy: AsyncConnection | None = None
        self._pooled: PoolProxiedConnection | None = None

    @classmethod
    async def open(cls, engine: AsyncEngine, read_engine: AsyncEngine) -> ReadConnection:
        """From ``engine``'s pool; ``read_engine`` (no BEGIN) for other drivers."""
        return await cls(engine, read_engine).__aenter__()

    async def __aenter__(self) -> ReadConnection:
        if self.dialect.driver == "asyncpg":
            pooled = await self._engine.raw_connection()
            self._pooled, self.driver = pooled, pooled.driver_connection
        else:
            self.sqlalchemy = await self._read_engine.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Back to the pool (the pool's reset has no transaction to roll back), or out
        of it when the server closed it meanwhile (a restart, a terminated backend)."""
        if self._pooled is not None:
            pooled, driver = self._pooled, self.driver
            self._pooled = self.driver = None
            await greenlet_spawn(pooled.invalidate if driver.is_closed() else pooled.close)
        elif self.sqlalchemy is not None:
            sqlalchemy, self.sqlalchemy = self.sqlalchemy, None
            await sqlalchemy.close()


class DirectSelect:
    """``statement`` with named bind parameters, run by :meth:`rows`."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            sql = self.statement.compile(dialect=dialect)
            names = tuple(sql.positiontup or ())
            binds = tuple(
                sql.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            )
            results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            )
            compiled = _Compiled(sql.string, names, binds, results)
            self._compiled[dialect.name] = compiled
        return compiled

    async def rows(
        self, connection: ReadConnection | AsyncConnection, params: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """The result rows as tuples, in the statement's column order.

        On PostgreSQL ``connection`` should be a :class:`ReadConnection` (no
        transaction): the driver runs the statement as it is, outside whatever
        transaction SQLAlchemy would otherwise have begun.
        """
        dialect = connection.dialect
        if isinstance(connection, ReadConnection):
            driver, sqlalchemy = connection.driver, connection.sqlalchemy
        else:
            driver, sqlalchemy = None, connection
        if driver is None:
            assert sqlalchemy is not None, "a closed ReadConnection"
            if dialect.driver != "asyncpg":
                result = await sqlalchemy.execute(self.statement, dict(params))
                return [tuple(row) for row in result.all()]
            driver = (await sqlalchemy.get_raw_connection()).driver_connection
        compiled = self._compile(dialect)
        args = [
            value if process is None else process(value)
            for process, value in zip(
                compiled.binds, (params[name] for name in compiled.names), strict=True
            )
        ]
        records = await driver.fetch(compiled.sql, *args)
        processors = compiled.results
        if not any(processors):
            return [tuple(record) for record in records]
        return [
            tuple(
                value if process is None else process(value)
                for process, value in zip(processors, record, strict=True)
            )
            for record in records
        ]


# -- any Core SELECT, compiled once per shape ----------------------------------------------


@dataclass(frozen=True)
class _Plan:
    compiled: Compiled
    names: tuple[str, ...]
    binds: tuple[Processor, ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, processor)
    make_row: Callable[[Sequence[Any]], Row[Any]]


_PLANS: dict[tuple[str, Any], _Plan | None] = {}
_MAX_PLANS = 1000


def _plan(statement: Select[Any], dialect: Dialect, key: CacheKey) -> _Plan | None:
    """``statement`` compiled for ``dialect``, or ``None`` when its SQL is only final at
    execution (an expanding ``IN``, a literal rendered then): SQLAlchemy runs those."""
    cache_key = (dialect.name, key.key)
    if cache_key in _PLANS:
        return _PLANS[cache_key]
    compiled = statement.compile(dialect=dialect, cache_key=key)
    keys = [str(column.key) for column in statement.selected_columns]
    plan = None
    # Rows keyed exactly as SQLAlchemy keys them: plain, uniquely named columns only.
    plain = keys == [column.keyname for column in compiled._result_columns]
    plain = plain and len(set(keys)) == len(keys)
    if plain and "POSTCOMPILE" not in compiled.string and not compiled.literal_execute_params:
        names = tuple(compiled.positiontup or ())
        plan = _Plan(
            compiled,
            names,
            tuple(
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            ),
            tuple(
                (index, process)
                for index, column in enumerate(statement.selected_columns)
                if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
            ),
            result_tuple(keys),
        )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[cache_key] = plan
    return plan


def _listened(dispatch: Any) -> bool:
    """Whether anything listens to a connection's statements (its engine's included)."""
    return bool(
        dispatch.before_execute
        or dispatch.after_execute
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
    )


async def select_rows(
    session: AsyncSession,
    statement: Select[Any],
    make_row: Callable[[Sequence[Any]], Any] | None = None,
) -> list[Any]:
    """``(await session.execute(statement)).all()``, straight through asyncpg on a read
    session (PostgreSQL, no transaction: ``create_read_session_factory``); with
    ``make_row``, each row made by it from the row's values instead.

    For list pages: the statement changes with every cursor and filter, so it cannot be
    a :class:`DirectSelect`; its shape does not. Each shape is compiled once (keyed by
    SQLAlchemy's own cache key, whose extracted values are this call's parameters), and
    the rows are the result rows SQLAlchemy would give, without its ORM execution path,
    execution context and result object around one round trip. Anywhere else (SQLite,
    a session inside a transaction, a statement SQLAlchemy must finish at execution,
    an engine with event listeners) the session runs it.
    """
    connection = await session.connection()
    dialect = connection.dialect
    # Whoever listens to the engine's statements (tracing, a test capturing the SQL)
    # sees every one: with listeners, SQLAlchemy runs it.
    sync = connection.sync_connection
    direct = dialect.driver == "asyncpg" and sync is not None and not _listened(sync.dispatch)
    key = statement._generate_cache_key() if direct else None
    plan = None if key is None else _plan(statement, dialect, key)
    raw = None if plan is None else await connection.get_raw_connection()
    # Only outside a transaction: run by the driver, the statement would not be in one
    # SQLAlchemy had begun (and it would not begin one when its first statement is this).
    if plan is None or raw is None or not getattr(raw.dbapi_connection, "autocommit", False):
        return await _through_sqlalchemy(session, statement, make_row)
    assert key is not None
    params = plan.compiled.construct_params(extracted_parameters=key[1]) or {}
    args = [
        params[name] if process is None else process(params[name])
        for process, name in zip(plan.binds, plan.names, strict=True)
    ]
    try:
        records = await raw.driver_connection.fetch(plan.compiled.string, *args)  # type: ignore[union-attr]
    except Exception:
        # SQLAlchemy meets the error itself: its exception types (which the problem
        # handlers answer) and, for a lost connection, the pool's invalidation.
        return await _through_sqlalchemy(session, statement, make_row)
    make = plan.make_row if make_row is None else make_row
    processors = plan.results
    if not processors:
        return [make(tuple(record)) for record in records]
    out = []
    for record in records:
        values = list(record)
        for index, process in processors:
            values[index] = process(values[index])
        out.append(make(values))
    return out


async def _through_sqlalchemy(
    session: AsyncSession, statement: Select[Any], make_row: Callable[[Sequence[Any]], Any] | None
) -> list[Any]:
    rows = (await session.execute(statement)).all()
    return list(rows) if make_row is None else [make_row(row) for row in rows]
