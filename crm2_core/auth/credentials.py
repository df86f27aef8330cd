"""Whether an access token's credentials still stand, without a query per request.

A user's ``credentials_version`` moves on whenever their roles, active flag or
password change (and the row goes when the user is deleted). Access tokens
carry the version they were issued with. Each process keeps the current
version of the users it has seen; an entry is dropped

- at once in the process that made the change, after its transaction commits
  (:func:`after_commit`), and
- in every other process when the ``auth.user.credentials_changed`` event
  reaches it (the streams hub taps every relayed event, see ``plugin.py``),

and reloaded after ``CRM2_AUTH_CREDENTIALS_CACHE_SECONDS`` at the latest, for
a process that hears no events (no Redis, events relayed elsewhere).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import col

from crm2_core.auth.models import User

AFTER_COMMIT_KEY = "crm2_auth_after_commit"


@dataclass(frozen=True)
class Credentials:
    version: int
    active: bool


class CredentialsCache:
    """user id → current credentials version and active flag, per process, bounded."""

    MAX_ENTRIES = 100_000

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self._session_factory = session_factory
        self._ttl = ttl
        self._entries: dict[uuid.UUID, tuple[Credentials | None, float]] = {}
        self._epoch = 0  # moves on with every invalidation
        self.loads = 0  # how many times a user's row was read (tests and figures)

    def invalidate(self, user_id: uuid.UUID) -> None:
        self._epoch += 1
        self._entries.pop(user_id, None)

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()

    def _fresh(self, user_id: uuid.UUID) -> tuple[bool, Credentials | None]:
        entry = self._entries.get(user_id)
        if entry is not None and time.monotonic() - entry[1] < self._ttl:
            return True, entry[0]
        return False, None

    async def get(self, user_id: uuid.UUID) -> Credentials | None:
        """The user's current credentials; ``None`` when the user no longer exists."""
        hit, value = self._fresh(user_id)
        if hit:
            return value
        epoch = self._epoch
        loaded_at = time.monotonic()
        async with self._session_factory() as session:
            row = (
                await session.execute(
                    select(col(User.credentials_version), col(User.is_active)).where(
                        col(User.id) == user_id
                    )
                )
            ).first()
        self.loads += 1
        value = None if row is None else Credentials(int(row[0]), bool(row[1]))
        # An invalidation that arrived during the read may be newer than what was read:
        # answer with it this once, but do not keep it.
        if epoch == self._epoch:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[user_id] = (value, loaded_at)
        return value


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction commits (never on rollback)."""
    session.sync_session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(AFTER_COMMIT_KEY, ()):
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)
