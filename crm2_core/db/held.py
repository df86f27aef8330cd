"""A session's write held until its commit, sent there as a statement of its own.

A create reads what it checks, then writes everything in one statement
(``insert_together``: the row, its children and its event). Under READ COMMITTED its
reads see outside a transaction block what they would see inside one (each statement
its own snapshot, nothing of its own written yet), and one statement is atomic by
itself. ``BEGIN`` and ``COMMIT`` around it are then two of the request's four round
trips and add no guarantee, so the write waits: at the commit, when nothing else is
left to write, it is sent alone (the server commits it as it ends); when anything else
comes first (another statement of the session, a flush), it is sent first, inside the
transaction then begun, and the rest follows in the same transaction as before.

Only on PostgreSQL through asyncpg, on a session of this class (every application
session), and only before its transaction has begun (an ``Idempotency-Key`` request's
claim, a handler's, any earlier write begin it): everywhere else the write is sent
at once, as ever. A held write's errors surface where it is sent: at the session's
next statement or at its commit (an ``IntegrityError`` is the same 409 there; a route's
commit runs before its response is sent). A rollback or close forgets it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only  # 2.1's ``await_`` too; 2.0 has only this name

from crm2_core.db.direct import (
    Statement,
    driver_statement,
    raise_as_sqlalchemy,
    run_on_driver,
    unbegun,
)


@dataclass(frozen=True, slots=True)
class HeldWrite:
    """A compiled statement and its driver arguments, for the connection it was meant for."""

    adapter: Any  # SQLAlchemy's asyncpg adapter of the session's connection
    connection: Connection  # the session's SQLAlchemy connection: its error handling
    sql: str
    args: Sequence[Any]

    def send(self, *, alone: bool) -> None:
        """Send it (from the session's synchronous side, in its greenlet): ``alone``
        without a transaction block when none is open, else in the session's
        transaction (begun here, as SQLAlchemy's first statement would begin it)."""
        try:
            await_only(self._send(alone))
        except Exception as error:
            raise_as_sqlalchemy(self.connection, self.adapter, error, self.sql, self.args)

    async def _send(self, alone: bool) -> None:
        adapter = self.adapter
        async with adapter._execute_mutex:
            if not alone and adapter._transaction is None:
                await adapter._start_transaction()  # SQLAlchemy's own lazy BEGIN
            await adapter._connection.execute(self.sql, *self.args)


class HoldsWrites(Session):
    """A session that can hold one write until its commit (:func:`write_at_commit`)."""

    _held: HeldWrite | None = None

    def hold(self, write: HeldWrite) -> None:
        if self._held is not None:  # not reached: a held write is sent before any other
            raise RuntimeError("a session holds one write at a time")
        self._held = write

    def send_held(self, *, alone: bool = False) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.send(alone=alone)

    def _connection_for_bind(
        self, engine: Any, execution_options: Any = None, **kw: Any
    ) -> Connection:
        # every statement the session runs (execute, get, connection(), a refresh) asks
        # for its connection here first: the held write goes ahead of it
        if self._held is not None:
            self.send_held()
        return super()._connection_for_bind(engine, execution_options, **kw)

    def begin_nested(self) -> SessionTransaction:
        # a savepoint comes after the held write: rolled back to, it keeps it
        if self._held is not None:
            self.send_held()
        return super().begin_nested()


@event.listens_for(HoldsWrites, "before_flush")
def _before_flush(session: Session, *_: Any) -> None:
    if isinstance(session, HoldsWrites):
        session.send_held()


@event.listens_for(HoldsWrites, "before_commit")
def _before_commit(session: Session) -> None:
    # ``Session.commit`` and a ``session.begin()`` block's end both come here, before
    # the commit's own flush: alone only when that flush will write nothing
    if isinstance(session, HoldsWrites) and session._held is not None:
        session.send_held(alone=session._is_clean())


@event.listens_for(HoldsWrites, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # a rollback (or a close) of the session's transaction forgets what it held
    if transaction.parent is None and isinstance(session, HoldsWrites):
        session._held = None


async def write_at_commit(
    session: AsyncSession, statement: Statement, params: Mapping[str, Any] | None = None
) -> None:
    """Run ``statement`` (a write whose rows nobody reads), held until the session's
    commit where it may be sent alone (see the module's docstring); elsewhere at once,
    as :func:`~crm2_core.db.direct.execute_in_session`."""
    direct = await driver_statement(session, statement, params)
    if direct is None:
        await session.execute(statement, params)
        return
    sync = session.sync_session
    if isinstance(sync, HoldsWrites) and unbegun(direct):
        sync.hold(HeldWrite(direct.adapter, direct.connection, direct.sql, direct.args))
        return
    await run_on_driver(direct, statement)
