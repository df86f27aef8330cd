"""Progressive delays per (account, address) instead of a lockout anybody can trigger.

A fixed lock on the account (ten wrong passwords, fifteen minutes) lets anyone
on the internet lock out anyone, the admin included. Here each failure on an
account *from one address* doubles the wait before the next attempt from that
address (after ``login_free_failures`` free ones), up to
``login_delay_max_seconds``; the account's owner signing in from elsewhere
never waits. The per-address failure limit (``throttle.py``) bounds guessing
across accounts.

Kept in the database (``auth_login_failure``) so that every process shares it
and ``crm2 users unlock`` reaches it. Each attempt is recorded as a failure
*before* the password is checked, in its own committed transaction, so that
concurrent guesses queue behind the delay; a success deletes the record.

A refused password on an existing account publishes ``auth.login.failed`` (and,
when the streak has just used up its free failures, ``auth.login.delayed``) in the
sign-in's transaction, which the login route commits before it answers 401.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm2_core.auth.config import AuthSettings
from crm2_core.auth.events import LoginDelayed, LoginFailed
from crm2_core.auth.models import LoginFailure
from crm2_core.db import utcnow
from crm2_core.events.outbox import publish

MAX_ADDRESS_LENGTH = 64


def delay_after(failures: int, settings: AuthSettings) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 0, …, 1, 2, 4, … cap."""
    free = settings.login_free_failures
    if failures < free:
        return 0.0
    return float(min(2 ** min(failures - free, 30), settings.login_delay_max_seconds))


class LoginDelays:
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], settings: AuthSettings
    ) -> None:
        self._session_factory = session_factory
        self._settings = settings

    async def take(self, account: str, address: str, session: AsyncSession | None = None) -> int:
        """Count this attempt as a failure; return 0 when it may go ahead, else seconds to wait.

        Committed in a transaction of its own; in ``session`` when given (a caller whose
        transaction has begun: on SQLite it holds the one writer lock), and kept then only
        if that transaction commits."""
        address = address[:MAX_ADDRESS_LENGTH]
        for _ in range(3):  # a concurrent first attempt may insert the row before us
            try:
                if session is not None:
                    async with session.begin_nested():  # a lost insert race undoes only this
                        return await self._take(session, account, address)
                async with self._session_factory() as own:
                    wait = await self._take(own, account, address)
                    await own.commit()
                return wait
            except IntegrityError:
                continue
        return 1

    async def _take(self, session: AsyncSession, account: str, address: str) -> int:
        now = utcnow()
        stmt = select(LoginFailure).where(
            col(LoginFailure.account) == account, col(LoginFailure.address) == address
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = (await session.execute(stmt)).scalar()
        if row is not None and row.blocked_until > now:
            return max(1, math.ceil((row.blocked_until - now).total_seconds()))
        window = timedelta(seconds=self._settings.login_window_seconds)
        if row is None:
            row = LoginFailure(account=account, address=address, failures=0)
            session.add(row)
        elif row.last_failure_at < now - window:
            row.failures = 0  # an old streak is forgotten
        row.failures += 1
        row.last_failure_at = now
        row.blocked_until = now + timedelta(seconds=delay_after(row.failures, self._settings))
        await session.flush()
        return 0

    async def failed(
        self,
        session: AsyncSession,
        account: str,
        address: str,
        user_id: uuid.UUID,
        reason: Literal["wrong_password", "account_disabled"],
    ) -> None:
        """Publish the refused sign-in on ``user_id``'s account, with the streak ``take`` kept,
        in the sign-in's transaction (which the route commits before answering 401)."""
        address = address[:MAX_ADDRESS_LENGTH]
        now = utcnow()
        row = await session.get(LoginFailure, (account, address))
        failures = row.failures if row is not None else 1
        wait = 0
        if row is not None and row.blocked_until > now:
            wait = max(1, math.ceil((row.blocked_until - now).total_seconds()))
        failed = LoginFailed(
            user_id=user_id,
            address=address,
            reason=reason,
            failures=failures,
            retry_after_seconds=wait,
        )
        publish(session, failed, subject=user_id)
        if failures == self._settings.login_free_failures:
            delayed = LoginDelayed(
                user_id=user_id, address=address, failures=failures, retry_after_seconds=wait
            )
            publish(session, delayed, subject=user_id)

    @staticmethod
    async def succeeded(session: AsyncSession, account: str, address: str) -> None:
        """Forget the streak, in the sign-in's own transaction."""
        await session.execute(
            delete(LoginFailure).where(
                col(LoginFailure.account) == account,
                col(LoginFailure.address) == address[:MAX_ADDRESS_LENGTH],
            )
        )

    async def unlock(self, account: str) -> int:
        """Forget every streak on ``account``; return how many addresses had one."""
        async with self._session_factory() as session:
            result = await session.execute(
                delete(LoginFailure).where(col(LoginFailure.account) == account)
            )
            await session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def sweep(self, older_than: datetime) -> None:
        async with self._session_factory() as session:
            await session.execute(
                delete(LoginFailure).where(col(LoginFailure.last_failure_at) < older_than)
            )
            await session.commit()
