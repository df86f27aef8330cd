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

from sqlalchemy import Column, Float, Numeric, Select
from sqlalchemy.engine import Compiled, Connection, Dialect, Engine
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import greenlet_spawn

Processor = Callable[[Any], Any] | None
# What the driver paths run: a SELECT, or an INSERT/UPDATE/DELETE
Statement = Select[*tuple[Any, ...]] | UpdateBase


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
    make_row: Callable[[Sequence[Any]], Any]

    def arguments(self, key: CacheKey, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The driver's positional arguments: ``params`` and the values ``key`` extracted
        from this call's statement, through each bind's processor."""
        values = self.compiled.construct_params(params=params, extracted_parameters=key[1]) or {}
        return [
            values[name] if process is None else process(values[name])
            for process, name in zip(self.binds, self.names, strict=True)
        ]

    def rows(self, records: Sequence[Sequence[Any]], make_row: Any = None) -> list[Any]:
        make = self.make_row if make_row is None else make_row
        processors = self.results
        if not processors:
            return [make(tuple(record)) for record in records]
        out = []
        for record in records:
            values = list(record)
            for index, process in processors:
                values[index] = process(values[index])
            out.append(make(values))
        return out


_PLANS: dict[tuple[str, bool, Any], _Plan | None] = {}
_MAX_PLANS = 1000


def _plan(
    statement: Statement, dialect: Dialect, key: CacheKey, *, keyed: bool = True
) -> _Plan | None:
    """``statement`` compiled for ``dialect``, or ``None`` when its SQL is only final at
    execution (an expanding ``IN``, a literal rendered then) or its rows are not plain
    columns: SQLAlchemy runs those. ``keyed``: rows are ``Row``s keyed by column (each
    column plainly and uniquely named); otherwise plain tuples.

    A ``SELECT``, or an ``INSERT``/``UPDATE``/``DELETE`` (its rows: its ``RETURNING``)."""
    cache_key = (dialect.name, keyed, key.key)
    if cache_key in _PLANS:
        return _PLANS[cache_key]
    columns: list[Any] | None = None
    if isinstance(statement, Select):
        columns = list(statement.selected_columns)
    elif isinstance(statement, UpdateBase):  # its rows are those of its RETURNING, if any
        columns = list(statement.exported_columns) if statement._returning else []
    plan = None
    compiled = None if columns is None else statement.compile(dialect=dialect, cache_key=key)
    if compiled is not None and columns is not None:
        keys = [str(column.key) for column in columns]
        if keyed:  # rows keyed exactly as SQLAlchemy keys them: plain, unique names only
            plain = keys == [column.keyname for column in compiled._result_columns]
            plain = plain and len(set(keys)) == len(keys)
        else:  # tuples: a value per selected column, whatever its label
            plain = len(compiled._result_columns) == len(columns)
        final = "POSTCOMPILE" not in compiled.string and not compiled.literal_execute_params
        processors = _result_processors(columns, dialect) if plain and final else None
        if processors is not None:
            names = tuple(compiled.positiontup or ())
            plan = _Plan(
                compiled,
                names,
                tuple(
                    compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                    for name in names
                ),
                processors,
                result_tuple(keys) if keyed else tuple,
            )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[cache_key] = plan
    return plan


# The driver's type code of a table column's numeric type (PostgreSQL's oid): SQLAlchemy's
# asyncpg numeric types choose their result processing by it, and only a result has it.
def _type_code(column: Any) -> int | None:
    if not isinstance(column, Column):
        return None
    if isinstance(column.type, Float):
        return 701  # float8
    return 1700 if isinstance(column.type, Numeric) else None  # numeric


def _result_processors(
    columns: Sequence[Any], dialect: Dialect
) -> tuple[tuple[int, Callable[[Any], Any]], ...] | None:
    """``(index, processor)`` of each column whose values the driver's need processing, or
    ``None`` when one cannot be known before a result (a numeric expression): SQLAlchemy
    then runs the statement."""
    found = []
    for index, column in enumerate(columns):
        try:
            process = column.type.dialect_impl(dialect).result_processor(
                dialect, _type_code(column)
            )
        except (TypeError, InvalidRequestError):  # it needed the result's type code
            return None
        if process is not None:
            found.append((index, process))
    return tuple(found)


def _driver_may_run(session: AsyncSession, connection: Connection) -> bool:
    """May asyncpg run a statement of ``session`` itself? Not with another driver, and
    not when anyone listens to the statements (tracing, a test capturing the SQL, an
    ORM execute hook): with listeners SQLAlchemy runs every one, so they see them all."""
    return (
        connection.dialect.driver == "asyncpg"
        and not _listened(connection.dispatch)
        and not session.sync_session.dispatch.do_orm_execute
    )


async def _session_connection(session: AsyncSession) -> Connection | None:
    """``(await session.connection()).sync_connection``; without the hop into a greenlet
    (~10 µs) when the session's transaction holds its connection already and no held
    write must be sent first (``held``): then SQLAlchemy would only look it up."""
    sync = session.sync_session
    transaction, bind = sync._transaction, sync.bind
    if (
        transaction is not None
        and bind is not None
        and transaction.is_active
        and getattr(sync, "_held", None) is None
        and (entry := transaction._connections.get(bind)) is not None
    ):
        return entry[0]
    return (await session.connection()).sync_connection


def _adapter_of(connection: Connection) -> Any:
    """The connection's DBAPI adapter (``get_raw_connection().dbapi_connection`` without
    the greenlet hop), or ``None`` when it has none checked out (invalidated, closed):
    SQLAlchemy then revalidates it as it runs the statement."""
    pooled = connection._dbapi_connection
    return None if pooled is None else pooled.dbapi_connection


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
    statement: Select[*tuple[Any, ...]],
    make_row: Callable[[Sequence[Any]], Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> list[Any]:
    """``(await session.execute(statement, params)).all()``, straight through asyncpg on a
    read session (PostgreSQL, no transaction: ``create_read_session_factory``); with
    ``make_row``, each row made by it from the row's values instead.

    For list pages: the statement changes with every cursor and filter, so it cannot be
    a :class:`DirectSelect`; its shape does not. Each shape is compiled once (keyed by
    SQLAlchemy's own cache key, whose extracted values are this call's parameters), and
    the rows are the result rows SQLAlchemy would give, without its ORM execution path,
    execution context and result object around one round trip. Anywhere else (SQLite,
    a session inside a transaction, a statement SQLAlchemy must finish at execution,
    an engine with event listeners) the session runs it.

    A read session that holds no connection yet (a GET's, whose first statement this
    is) is not given one: the statement runs on a connection taken from the pool and
    given back at once (:func:`_pooled_rows`), as the session would have run it there
    without a transaction.
    """
    if _may_skip_connection(session):
        rows = await _pooled_rows(session, statement, make_row, params)
        if rows is not None:
            return rows
    connection = await _session_connection(session)
    if connection is None or not _driver_may_run(session, connection):
        return await _through_sqlalchemy(session, statement, make_row, params)
    adapter: Any = _adapter_of(connection)
    key = statement._generate_cache_key() if _adapter_known(adapter) else None
    plan = None if key is None else _plan(statement, connection.dialect, key)
    # Only outside a transaction: run by the driver, the statement would not be in one
    # SQLAlchemy had begun (and it would not begin one when its first statement is this).
    if plan is None or key is None or not getattr(adapter, "autocommit", False):
        return await _through_sqlalchemy(session, statement, make_row, params)
    args = plan.arguments(key, params)
    try:
        records = await adapter._connection.fetch(plan.compiled.string, *args)
    except Exception:
        # SQLAlchemy meets the error itself: its exception types (which the problem
        # handlers answer) and, for a lost connection, the pool's invalidation.
        return await _through_sqlalchemy(session, statement, make_row, params)
    return plan.rows(records, make_row)


def _may_skip_connection(session: AsyncSession) -> bool:
    """Is ``session`` a read session on asyncpg (no transaction: each statement commits
    by itself) that holds no connection yet, with nothing to flush and no one listening
    to its statements?  Then taking a connection for it only to run one statement past
    it would cost more than the statement (the session's transaction object, a
    SQLAlchemy ``Connection``, its isolation level set and reset)."""
    sync = session.sync_session
    engine = sync.bind
    return (
        isinstance(engine, Engine)
        and engine.dialect.driver == "asyncpg"
        and engine.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        and not sync.in_transaction()
        and not _has_pending(session)
        and not sync.dispatch.do_orm_execute
        and not _listened(engine.dispatch)
    )


async def _pooled_rows(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    make_row: Callable[[Sequence[Any]], Any] | None,
    params: Mapping[str, Any] | None,
) -> list[Any] | None:
    """``statement``'s rows from a pool connection held for this one round trip (see
    :class:`ReadConnection`: the driver runs it without a transaction); ``None`` when
    its plan leaves it to SQLAlchemy. When the driver fails, the session runs it and
    meets the error itself."""
    engine = session.sync_session.bind
    assert isinstance(engine, Engine)
    key = statement._generate_cache_key()
    plan = None if key is None else _plan(statement, engine.dialect, key)
    if plan is None or key is None:
        return None
    args = plan.arguments(key, params)
    pooled = await greenlet_spawn(engine.raw_connection)
    driver = pooled.driver_connection
    try:
        records = await driver.fetch(plan.compiled.string, *args)  # type: ignore[union-attr]
    except Exception:
        records = None
    finally:
        await greenlet_spawn(pooled.invalidate if driver.is_closed() else pooled.close)  # type: ignore[union-attr]
    if records is None:
        return await _through_sqlalchemy(session, statement, make_row, params)
    return plan.rows(records, make_row)


async def _through_sqlalchemy(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    make_row: Callable[[Sequence[Any]], Any] | None,
    params: Mapping[str, Any] | None = None,
) -> list[Any]:
    rows = (await session.execute(statement, params)).all()
    return list(rows) if make_row is None else [make_row(row) for row in rows]


# -- a statement inside the session's transaction ------------------------------------------


def _has_pending(session: AsyncSession) -> bool:
    """Would ``session.execute`` flush first (autoflush with unwritten ORM changes)?"""
    sync = session.sync_session
    return sync.autoflush and bool(sync.new or sync.deleted or sync.dirty)


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement the driver may run for the session: its SQL and arguments, and the
    connection's parts that run it or handle its error."""

    connection: Connection
    adapter: Any  # SQLAlchemy's asyncpg adapter
    plan: _Plan
    sql: str
    args: list[Any]


async def _direct(
    session: AsyncSession, statement: Statement, params: Mapping[str, Any] | None
) -> DriverStatement | None:
    """``statement`` ready for the driver on the session's connection, or ``None`` when
    SQLAlchemy must run it (see :func:`execute_in_session`). Flushes first what
    ``session.execute`` would."""
    if _has_pending(session):
        await session.flush()
    sync = await _session_connection(session)
    if sync is None or not _driver_may_run(session, sync):
        return None
    adapter = _adapter_of(sync)
    key = statement._generate_cache_key() if _adapter_known(adapter) else None
    plan = None if key is None else _plan(statement, sync.dialect, key, keyed=False)
    if plan is None or key is None:
        return None
    return DriverStatement(sync, adapter, plan, plan.compiled.string, plan.arguments(key, params))


# Isolation levels (the adapter's names; None: the server's default, READ COMMITTED) under
# which a read before the transaction's first write sees outside the transaction block
# what it would see inside: every statement takes its own snapshot anyway.
_STATEMENT_SNAPSHOTS = frozenset({None, "read_committed", "autocommit"})


def _needs_no_begin(statement: Statement, adapter: Any) -> bool:
    """A plain read (no ``FOR UPDATE``) before anything of the transaction was sent, under
    READ COMMITTED: nothing to be atomic with, no lock to hold. (Whether it only reads,
    its caller says: a ``SELECT`` may call a function that writes or takes a lock.)"""
    return (
        adapter._transaction is None
        and adapter.isolation_level in _STATEMENT_SNAPSHOTS
        and isinstance(statement, Select)
        and statement._for_update_arg is None
    )


async def execute_in_session(
    session: AsyncSession,
    statement: Statement,
    params: Mapping[str, Any] | None = None,
    *,
    reads_only: bool = False,
    alone: bool = False,
) -> list[tuple[Any, ...]]:
    """``(await session.execute(statement, params)).all()`` as plain tuples, in the
    session's transaction, straight through asyncpg on PostgreSQL.

    For the few statements of the hottest writes (a new deal's start query, an event
    handler's claim): SQLAlchemy's session and Core execution around one statement
    (compile-cache look-up, execution context, the adapted cursor, the result object)
    cost about twice the driver's own CPU for it. Here the statement is compiled once
    per shape (as ``select_rows`` does), the session's transaction is begun on the
    driver by SQLAlchemy's own adapter (its lazy ``BEGIN``, under its lock) so the
    statement is in the transaction the session commits or rolls back, and a failure is
    handed to SQLAlchemy's connection: the same exception types (``IntegrityError``…),
    the same invalidation of a lost connection, the same ``handle_error`` events.

    ``reads_only``: the statement is a ``SELECT`` that only reads (no ``FOR UPDATE``, no
    function that writes or locks). Before anything else of the transaction it is then
    sent without ``BEGIN`` under READ COMMITTED: it sees what it would see as the
    transaction's first statement, and the transaction's one write may then be sent
    alone at the commit (``held.write_at_commit``): a create's two round trips instead
    of four.

    ``alone``: the statement is all the transaction writes, and its caller sends nothing
    more before the commit (an event handler's claim for an event that is nothing to
    the handler). Before anything else of the transaction it is then sent without
    ``BEGIN``: PostgreSQL runs it as a transaction of its own, and the session's commit
    has nothing left to send. One round trip instead of three.

    SQLAlchemy runs it as usual anywhere else: another driver, a session or engine with
    statement listeners (tracing, tests recording SQL), a statement it must finish at
    execution. Unwritten ORM changes are flushed first, as ``session.execute`` would.
    """
    direct = await _direct(session, statement, params)
    if direct is None:
        result = await session.execute(statement, params)
        returns_rows = isinstance(statement, Select) or bool(getattr(statement, "_returning", ()))
        return [tuple(row) for row in result.all()] if returns_rows else []
    return await run_on_driver(direct, statement, reads_only=reads_only, alone=alone)


async def run_on_driver(
    direct: DriverStatement,
    statement: Statement,
    *,
    reads_only: bool = False,
    alone: bool = False,
) -> list[tuple[Any, ...]]:
    """Run a statement :func:`driver_statement` prepared, as :func:`execute_in_session`."""
    adapter = direct.adapter
    try:
        async with adapter._execute_mutex:
            if adapter._transaction is None and not (
                (alone and adapter.isolation_level in _STATEMENT_SNAPSHOTS)
                or (reads_only and _needs_no_begin(statement, adapter))
            ):
                await adapter._start_transaction()  # SQLAlchemy's own lazy BEGIN
            records = await adapter._connection.fetch(direct.sql, *direct.args)
    except Exception as error:
        await greenlet_spawn(
            raise_as_sqlalchemy, direct.connection, adapter, error, direct.sql, direct.args
        )
        raise  # not reached: the line above raises
    rows: list[tuple[Any, ...]] = direct.plan.rows(records)
    return rows


async def driver_statement(
    session: AsyncSession, statement: Statement, params: Mapping[str, Any] | None = None
) -> DriverStatement | None:
    """``statement``'s SQL and driver arguments with the session's connection and its
    asyncpg adapter, when the driver may run it (:func:`run_on_driver`); else ``None``:
    SQLAlchemy must run it. Flushes first what ``session.execute`` would."""
    return await _direct(session, statement, params)


def session_unbegun(session: AsyncSession) -> bool:
    """Has nothing of the session's transaction been sent yet (no ``BEGIN`` on its
    connection, no write held for its commit)? Asked without checking a connection
    out: a session that has none yet has sent nothing."""
    sync = session.sync_session
    if getattr(sync, "_held", None) is not None:
        return False
    transaction, bind = sync._transaction, sync.bind
    if transaction is None or bind is None:
        return True
    if transaction.nested or not transaction.is_active:
        return False
    entry = transaction._connections.get(bind)
    if entry is None:
        return True
    adapter = _adapter_of(entry[0])
    return adapter is not None and getattr(adapter, "_transaction", True) is None


def unbegun(direct: DriverStatement) -> bool:
    """Has nothing of the session's transaction been sent yet, under READ COMMITTED
    (``held.write_at_commit``)?"""
    adapter = direct.adapter
    return adapter._transaction is None and adapter.isolation_level in _STATEMENT_SNAPSHOTS


# What ``execute_in_session`` uses of SQLAlchemy's asyncpg adapter (read against 2.1.9);
# an adapter without one of them leaves every statement to SQLAlchemy.
_ADAPTER_PARTS: tuple[str, ...] = ("_execute_mutex", "_transaction", "_start_transaction")
_ADAPTER_PARTS += ("_connection", "_handle_exception", "dbapi", "isolation_level")


_KNOWN_ADAPTERS: dict[type, bool] = {}


def _adapter_known(adapter: Any) -> bool:
    """Does ``adapter`` (a pooled connection's DBAPI connection) have every part used?
    Asked of the first connection of each adapter class."""
    if adapter is None:
        return False
    known = _KNOWN_ADAPTERS.get(type(adapter))
    if known is None:
        known = _KNOWN_ADAPTERS[type(adapter)] = all(hasattr(adapter, p) for p in _ADAPTER_PARTS)
    return known


def raise_as_sqlalchemy(
    sync: Any, adapted: Any, error: Exception, sql: str, args: Sequence[Any]
) -> None:
    """Raise ``error`` as SQLAlchemy would have: translated by its asyncpg adapter, then
    through the connection's handling (wrapping, invalidation, ``handle_error``)."""
    try:
        if isinstance(error, adapted.dbapi.Error):
            raise error
        adapted._handle_exception(error)  # raises the adapter's translation
    except Exception as translated:
        sync._handle_dbapi_exception(translated, sql, tuple(args), None, None)
