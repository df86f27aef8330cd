"""Engine and session factory, built from settings (never at import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from crm2_core.db.folding import register_sqlite_functions
from crm2_core.db.held import HoldsWrites
from crm2_core.settings import Settings

# Connection execution option: seconds to wait for SQLite's write lock when this
# transaction begins, instead of the connection's 30 s (see ``_on_begin``).
LOCK_WAIT_OPTION = "crm2_lock_wait_seconds"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _sqlite_engine(settings.database_url)
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        # No overflow: overflow connections are closed on return whenever the pool is
        # full, so a busy process would open and close a connection per request.
        # Requests beyond the pool wait for a connection instead.
        max_overflow=0,
        # asyncpg's ping is BEGIN; SELECT; ROLLBACK: three round trips on every checkout.
        # Without it a connection the server dropped fails one request, and SQLAlchemy
        # then refreshes the whole pool (it recognises disconnect errors).
        pool_pre_ping=settings.database_pre_ping,
    )


def _sqlite_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that every transaction
        # starts with BEGIN IMMEDIATE: SQLite then queues writers on its busy
        # timeout instead of failing a read-then-write upgrade with "locked".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        wait = connection.get_execution_options().get(LOCK_WAIT_OPTION)
        if wait is None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        # A bounded wait for this one transaction (an Idempotency-Key claim), then
        # the connection's usual timeout again: the pragma outlives the transaction.
        connection.exec_driver_sql(f"PRAGMA busy_timeout={max(1, int(wait * 1000))}")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

    return engine


class AppSession(HoldsWrites):
    """The sessions of one application. ``app_session_class()`` makes a subclass per
    application, so session events (the relay's wake-up after commit) are bound to that
    application and not to every session in the process. A session may hold its one
    write until its commit (``held``).

    ``application``: the ``AppContext`` whose sessions these are (set by it), so a rule
    that must ask the application's hooks (``resolve_owner``'s ``crm2_check_permission``)
    finds them from the session it is given, whoever calls it."""

    application: Any = None


def app_session_class() -> type[AppSession]:
    return type("AppSession", (AppSession,), {"__module__": __name__})


def create_session_factory(
    engine: AsyncEngine, session_class: type[Session] = Session
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=session_class
    )


def create_read_engine(engine: AsyncEngine, settings: Settings) -> AsyncEngine:
    """``engine`` for reads: without BEGIN/COMMIT on PostgreSQL.

    Under READ COMMITTED every statement sees the same snapshot on its own as it
    would inside a transaction, and a read saves two of its three round trips.
    SQLite keeps its transactions (the driver serialises access there anyway).
    Never write through it: on PostgreSQL every statement commits by itself.
    """
    if settings.is_sqlite:
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_read_session_factory(
    engine: AsyncEngine, settings: Settings, session_class: type[Session] = Session
) -> async_sessionmaker[AsyncSession]:
    """Sessions for safe requests (GET, HEAD, OPTIONS), on :func:`create_read_engine`."""
    return create_session_factory(create_read_engine(engine, settings), session_class)
