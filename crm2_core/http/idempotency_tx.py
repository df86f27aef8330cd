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

A route that raised rolled everything back, key included: its retry runs again.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

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
        self.record = record


class IdempotentRequest:
    """One POST with an ``Idempotency-Key``: its claim, its transaction and how it ends."""

    def __init__(self, context: AppContext, owner: str, key: str, fingerprint: str) -> None:
        self.context = context
        self.owner = owner
        self.key = key
        self.fingerprint = fingerprint
        self.session: AsyncSession | None = None
        # True once the route returned and its writes flushed (``SessionDep`` says so).
        self.route_returned = False

    async def begin(self) -> AsyncSession:
        """The request's session, its transaction begun by claiming the key."""
        if self.session is not None:
            return self.session
        session = self.context.session_factory()
        session.info[IDEMPOTENCY_STATE] = self.key  # tells logs and tests whose it is
        try:
            await self._claim(session)
        except BaseException:
            await session.close()
            raise
        self.session = session
        return session

    async def rollback(self) -> None:
        """The route raised: nothing it did and no key is kept."""
        if self.session is not None:
            await self.session.rollback()

    async def finish(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Commit the route's work with its response stored under the key, or keep nothing."""
        if self.session is None:
            if status < 400:
                await self._store_without_transaction(status, headers, body)
            return
        if not self.route_returned:
            await self.session.rollback()
            return
        where = (IdempotencyRecord.scope == self.owner, IdempotencyRecord.key == self.key)
        if status < 400:
            await self.session.execute(
                update(IdempotencyRecord)
                .where(*where)
                .values(
                    state="done",
                    response_status=status,
                    response_headers=json.dumps(headers),
                    response_body=body,
                )
            )
        else:
            # The route answered an error itself: its writes commit as they would
            # without a key, and the key stays free for a corrected retry.
            await self.session.execute(delete(IdempotencyRecord).where(*where))
        await self.session.commit()
        await self._maybe_sweep()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def _store_without_transaction(
        self, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """A route without ``SessionDep`` ran: store its response afterwards.

        Such a route wrote nothing through the request's transaction, so there is
        nothing to make atomic; a duplicate that ran meanwhile keeps its own answer.
        """
        try:
            await self.begin()
        except (StoredResponse, IdempotencyInFlight, IdempotencyKeyReused):
            return
        self.route_returned = True
        await self.finish(status, headers, body)

    async def _claim(self, session: AsyncSession) -> None:
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                await self._try_claim(session)
                return
            except IntegrityError:
                # A duplicate committed between our read and our insert (PostgreSQL
                # waited for it): read again, and replay what it stored.
                await session.rollback()
        raise IdempotencyInFlight("a request with this Idempotency-Key is still running")

    async def _try_claim(self, session: AsyncSession) -> None:
        wait = self.context.settings.idempotency_wait_seconds
        now = utcnow()
        try:
            # SQLite: BEGIN IMMEDIATE waits for the write lock at most ``wait``.
            connection = await session.connection(execution_options={LOCK_WAIT_OPTION: wait})
            postgres = connection.dialect.name == "postgresql"
            if postgres:
                # The insert below waits for a duplicate's uncommitted row: bounded.
                await session.execute(
                    text("SELECT set_config('lock_timeout', :ms, true)"),
                    {"ms": f"{max(1, int(wait * 1000))}ms"},
                )
            row = (
                await session.execute(
                    select(IdempotencyRecord)
                    .where(IdempotencyRecord.scope == self.owner, IdempotencyRecord.key == self.key)
                    .execution_options(populate_existing=True)
                )
            ).scalar_one_or_none()
            if row is not None:
                if row.expires_at <= now or row.state != "done":
                    # Expired, or left "in progress" by a version that claimed in its
                    # own transaction: the key is free.
                    await session.delete(row)
                    await session.flush()
                elif row.fingerprint != self.fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used for a different request; use a new key"
                    )
                else:
                    raise StoredResponse(row)
            session.add(
                IdempotencyRecord(
                    scope=self.owner,
                    key=self.key,
                    fingerprint=self.fingerprint,
                    state="in_progress",
                    locked_at=now,
                    expires_at=now
                    + timedelta(seconds=self.context.settings.idempotency_ttl_seconds),
                )
            )
            await session.flush()
            if postgres:
                await session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        except IntegrityError:
            raise
        except DBAPIError as exc:
            if not _is_lock_wait(exc):
                raise
            await session.rollback()
            raise IdempotencyInFlight(
                "a request with this Idempotency-Key is still running; retry later"
            ) from None

    async def _maybe_sweep(self) -> None:
        if random.randrange(SWEEP_EVERY):
            return
        async with self.context.session_factory() as session:
            await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
            )
            await session.commit()


def _is_lock_wait(exc: DBAPIError) -> bool:
    orig: Any = exc.orig
    if getattr(orig, "sqlstate", None) == _POSTGRES_LOCK_TIMEOUT:
        return True
    return "database is locked" in str(orig)
