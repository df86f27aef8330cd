"""The transaction of a POST with an ``Idempotency-Key``: claim, effect and response, one commit.

``IdempotencyMiddleware`` puts an ``IdempotentRequest`` into the request's state;
``SessionDep`` then asks it for the request's session instead of opening its own:

1. ``begin()`` opens the transaction and claims the key as its first write: a
   stored response is raised as ``StoredResponse`` (replayed), another request's
   fingerprint as 422. A duplicate still running holds the key's row (PostgreSQL)
   or the write lock (SQLite): the claim waits for it, at most
   ``CRM2_IDEMPOTENCY_WAIT_SECONDS`` (then 409), and reads its outcome.
2. The route runs in that transaction; ``SessionDep`` flushes, never commits.
3. ``finish()`` writes the response into the claimed row and commits once; the
   middleware sends the response only then.

A streamed body (``idempotency_body``) has no fingerprint until the route has read
it: the claim waits for ``body_read()``, and runs in the route's transaction if the
route has begun one (in a savepoint on PostgreSQL, so a retried claim keeps its work).

A route that raised rolled everything back, key included: its retry runs again.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from crm2_core.context import AppContext
from crm2_core.db import utcnow
from crm2_core.db.engine import LOCK_WAIT_OPTION
from crm2_core.errors import IdempotencyInFlight, IdempotencyKeyReused
from crm2_core.http.models import IdempotencyRecord

log = logging.getLogger(__name__)

# Key of the request's ``IdempotentRequest`` in the ASGI scope's state.
IDEMPOTENCY_STATE = "crm2.idempotency"
# Expired rows are deleted after one stored response in this many, on average.
SWEEP_EVERY = 500
_CLAIM_ATTEMPTS = 3
_POSTGRES_LOCK_TIMEOUT = "55P03"  # lock_not_available


class StoredResponse(Exception):
    """The key's response is stored already: the middleware replays it."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(record.key)
        # A copy: the route's transaction, rolled back before the replay, expires the row.
        self.record = IdempotencyRecord(**record.model_dump())


class IdempotentRequest:
    """One POST with an ``Idempotency-Key``: its claim, its transaction and how it ends."""

    def __init__(self, context: AppContext, owner: str, key: str, fingerprint: str | None) -> None:
        self.context = context
        self.owner = owner
        self.key = key
        # ``None`` until a streamed body has been read to its end (``body_read``).
        self.fingerprint = fingerprint
        self.session: AsyncSession | None = None
        # True once the route returned and its writes flushed (``SessionDep`` says so).
        self.route_returned = False
        # True once the key's row is inserted in the session's transaction.
        self.claimed = False

    async def begin(self) -> AsyncSession:
        """The request's session; its transaction claims the key as its first write.

        PostgreSQL claims now. SQLite claims when the route's transaction begins
        (``after_begin``): a route may first ask other plugins in sessions of their
        own (``crm2_resolve_entity``), which on SQLite would wait for our write lock.
        """
        if self.session is not None:
            return self.session
        wait = self.context.settings.idempotency_wait_seconds
        if self.context.settings.is_sqlite:
            # Every BEGIN IMMEDIATE of this session waits at most ``wait``.
            bind = self.context.engine.execution_options(**{LOCK_WAIT_OPTION: wait})
            session = self.context.session_factory(bind=bind)
            event.listen(session.sync_session, "after_begin", self._claim_at_begin)
        else:
            session = self.context.session_factory()
        session.info[IDEMPOTENCY_STATE] = self.key  # tells logs and tests whose it is
        if not self.context.settings.is_sqlite and self.fingerprint is not None:
            try:
                await self._claim(session)
            except BaseException:
                await session.close()
                raise
        self.session = session
        return session

    async def body_read(self, fingerprint: str) -> None:
        """A streamed body has been read to its end: claim the key now, unless the
        route has no session yet (its ``begin`` claims) or, on SQLite, no transaction
        yet (its ``BEGIN`` claims)."""
        self.fingerprint = fingerprint
        session = self.session
        if self.claimed or session is None:
            return
        if not self.context.settings.is_sqlite:
            await self._claim(session)
        elif session.in_transaction():
            # BEGIN IMMEDIATE already holds the write lock: nobody else claims meanwhile.
            await session.run_sync(lambda sync: self._claim_at_begin(sync, None, sync.connection()))

    async def check_stored(self) -> None:
        """Raise what a claim would of a stored response under the key: ``StoredResponse``
        for this request's, 422 for another request's.

        For a streamed request the route answered with an error before its key was
        claimed: the error may come from the stored request's own effect.
        """
        if self.fingerprint is None:
            return
        # A read (on PostgreSQL without a transaction). On SQLite this request's own
        # transaction holds no write lock here: had it begun, it would have claimed the key.
        factory = self.context.read_session_factory or self.context.session_factory
        async with factory() as session:
            row = (
                await session.execute(
                    select(IdempotencyRecord).where(
                        col(IdempotencyRecord.scope) == self.owner,
                        col(IdempotencyRecord.key) == self.key,
                    )
                )
            ).scalar_one_or_none()
        if row is not None:
            self._frees_key(row, utcnow())

    async def rollback(self) -> None:
        """The route raised: nothing it did and no key is kept."""
        if self.session is not None:
            await self.session.rollback()

    async def finish(self, status: int, headers: list[tuple[str, str]], body: bytes | None) -> None:
        """Commit the route's work with its response stored under the key, or keep nothing.

        ``body`` ``None``: a response not to keep (``Cache-Control: no-store``).

        May raise what the claim raises (``StoredResponse``, 409, 422) when the route
        never began its transaction: then it is claimed only now.
        """
        if self.session is None:
            if status >= 400:
                return
            # A route without ``SessionDep`` wrote nothing through the request's
            # transaction: its response is stored afterwards, and concurrent
            # duplicates of it are not excluded.
            await self.begin()
            self.route_returned = True
        assert self.session is not None
        if not self.route_returned:
            await self.session.rollback()
            return
        await self.session.connection()  # SQLite: begins, and so claims, if not yet
        if status < 400:
            stored = await self.session.execute(
                _store_response(),
                {
                    "store_scope": self.owner,
                    "store_key": self.key,
                    "store_status": status,
                    "store_headers": json.dumps(headers),
                    "store_body": body,
                },
            )
            if stored.rowcount != 1:  # type: ignore[attr-defined]
                raise RuntimeError("the claimed Idempotency-Key row is gone; nothing is kept")
        elif self.claimed:
            # The route answered an error itself: its writes commit as they would
            # without a key, and the key stays free for a corrected retry.
            where = (
                col(IdempotencyRecord.scope) == self.owner,
                col(IdempotencyRecord.key) == self.key,
            )
            await self.session.execute(delete(IdempotencyRecord).where(*where))
        await self.session.commit()
        await self._maybe_sweep()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def _claim_at_begin(self, _session: Session, _transaction: Any, connection: Connection) -> None:
        """SQLite: the claim as the first statements of the route's transaction.

        BEGIN IMMEDIATE holds the write lock already, so nobody can insert the key
        between the read and the insert; a duplicate waits at its own BEGIN.
        """
        if self.claimed or self.fingerprint is None:
            return  # a streamed body not read yet: ``body_read`` claims
        table: Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
        where = (table.c.scope == self.owner, table.c.key == self.key)
        now = utcnow()
        found = connection.execute(select(table).where(*where)).mappings().first()
        if found is not None and self._frees_key(IdempotencyRecord(**found), now):
            connection.execute(delete(table).where(*where))
        connection.execute(insert(table).values(**self._claim_values(now)))
        self.claimed = True

    def _frees_key(self, row: IdempotencyRecord, now: datetime) -> bool:
        """``True`` when the key's row leaves it free: expired, or left "in progress" by a
        version that claimed in its own transaction. Else raises what the stored
        response answers: ``StoredResponse`` for this request, 422 for another."""
        if row.expires_at <= now or row.state != "done":
            return True
        if row.fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        raise StoredResponse(row)

    def _claim_values(self, now: datetime) -> dict[str, Any]:
        return {
            "scope": self.owner,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "state": "in_progress",
            "locked_at": now,
            "expires_at": now + timedelta(seconds=self.context.settings.idempotency_ttl_seconds),
        }

    async def _claim(self, session: AsyncSession) -> None:
        # A route that wrote before its streamed body was read keeps that work: its
        # claim runs in savepoints, rolled back alone.
        nested = session.in_transaction()
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                if nested:
                    async with session.begin_nested():
                        await self._try_claim(session, nested)
                else:
                    await self._try_claim(session, nested)
                return
            except IntegrityError:
                # A duplicate committed between our read and our insert (PostgreSQL
                # waited for it): read again, and replay what it stored.
                if not nested:
                    await session.rollback()
        raise IdempotencyInFlight("a request with this Idempotency-Key is still running")

    async def _try_claim(self, session: AsyncSession, nested: bool) -> None:
        wait = self.context.settings.idempotency_wait_seconds
        now = utcnow()
        try:
            if await self._claim_new(session, now, wait):
                self.claimed = True
                return
            # The key has a row: a stored response, another request's, an expired one
            # or one left in progress. Read it (waiting as long) and decide.
            # PostgreSQL only (SQLite claims in ``_claim_at_begin``): the insert below
            # waits for a duplicate's uncommitted row, at most ``wait``.
            await session.execute(
                text("SELECT set_config('lock_timeout', :ms, true)"),
                {"ms": f"{max(1, int(wait * 1000))}ms"},
            )
            row = (
                await session.execute(
                    select(IdempotencyRecord)
                    .where(
                        col(IdempotencyRecord.scope) == self.owner,
                        col(IdempotencyRecord.key) == self.key,
                    )
                    .execution_options(populate_existing=True)
                )
            ).scalar_one_or_none()
            if row is not None and self._frees_key(row, now):
                await session.delete(row)
                await session.flush()
            session.add(IdempotencyRecord(**self._claim_values(now)))
            await session.flush()
            await session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
            self.claimed = True
        except IntegrityError:
            raise
        except DBAPIError as exc:
            if not is_lock_wait(exc):
                raise
            if not nested:
                await session.rollback()
            raise IdempotencyInFlight(
                "a request with this Idempotency-Key is still running; retry later"
            ) from None

    async def _claim_new(self, session: AsyncSession, now: datetime, wait: float) -> bool:
        """PostgreSQL: claim a key nobody holds in one round trip (it was four); ``False``
        when the key has a row. Waits for a duplicate's uncommitted row at most ``wait``
        (then the lock-timeout error), and puts ``lock_timeout`` back once claimed."""
        row = self._claim_values(now)
        values = {f"claim_{name}": value for name, value in row.items()}
        values["claim_wait"] = f"{max(1, int(wait * 1000))}ms"
        return (await session.execute(_claim_new_key(tuple(row)), values)).first() is not None

    async def _maybe_sweep(self) -> None:
        if random.randrange(SWEEP_EVERY):
            return
        async with self.context.session_factory() as session:
            await session.execute(
                delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= utcnow())
            )
            await session.commit()


@lru_cache(maxsize=1)
def _store_response() -> Any:
    """The claimed row marked done with the response (``store_<name>`` parameters)."""
    table: Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    return (
        update(table)
        .where(table.c.scope == bindparam("store_scope"), table.c.key == bindparam("store_key"))
        .values(
            state="done",
            response_status=bindparam("store_status", type_=table.c.response_status.type),
            response_headers=bindparam("store_headers", type_=table.c.response_headers.type),
            response_body=bindparam("store_body", type_=table.c.response_body.type),
        )
    )


@lru_cache(maxsize=4)
def _claim_new_key(columns: tuple[str, ...]) -> Any:
    """``INSERT`` the key's row unless it has one, with ``lock_timeout`` set (in a CTE the
    row is made from, so before any wait) and set back in ``RETURNING`` (for a row
    written): ``columns`` (``_claim_values``'), each a ``claim_<name>`` parameter."""
    table: Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    lock_wait = (
        select(
            func.current_setting("lock_timeout").label("configured"),
            func.set_config("lock_timeout", bindparam("claim_wait"), true()).label("waiting"),
        )
        .cte("crm2_lock_wait")
        .prefix_with("MATERIALIZED")
    )
    row = select(*(bindparam(f"claim_{c}", type_=table.c[c].type) for c in columns))
    put_back = select(func.set_config("lock_timeout", lock_wait.c.configured, true()))
    return (
        postgresql_insert(table)
        .from_select(list(columns), row.select_from(lock_wait))
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(put_back.scalar_subquery().label("lock_timeout"))
        .add_cte(lock_wait)
    )


def is_lock_wait(exc: DBAPIError) -> bool:
    orig: Any = exc.orig
    if getattr(orig, "sqlstate", None) == _POSTGRES_LOCK_TIMEOUT:
        return True
    return "database is locked" in str(orig)
