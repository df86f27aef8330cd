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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import col

from crm2_core.auth.models import ApiKey, User
from crm2_core.db.direct import select_rows

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
            rows = await select_rows(session, _CREDENTIALS, params={"user_id": user_id})
        self.loads += 1
        value = Credentials(int(rows[0][0]), bool(rows[0][1])) if rows else None
        # An invalidation that arrived during the read may be newer than what was read:
        # answer with it this once, but do not keep it.
        if epoch == self._epoch:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[user_id] = (value, loaded_at)
        return value


@dataclass(frozen=True)
class KeyRecord:
    """What authenticating an API key needs of its row."""

    id: uuid.UUID
    name: str
    key_hash: str
    role_name: str
    created_by: uuid.UUID | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def expiry(self) -> dict[str, float]:
        """A principal's ``expires_at`` (epoch seconds), if the key expires: a stream
        opened with the key, or with a stream token made with it, ends then."""
        return {} if self.expires_at is None else {"expires_at": self.expires_at.timestamp()}


# Column reads, not ORM entities, with their values bound at execution: on a read
# session (PostgreSQL, no transaction) each is one round trip straight through the
# driver (``select_rows``), where a transactional session took three (BEGIN, SELECT,
# ROLLBACK) and the ORM's loading around them: with the caches off
# (``CRM2_AUTH_CREDENTIALS_CACHE_SECONDS=0``) this runs on every request.
_CREDENTIALS = select(col(User.credentials_version), col(User.is_active)).where(
    col(User.id) == bindparam("user_id")
)
_KEY_COLUMNS = (
    col(ApiKey.id),
    col(ApiKey.name),
    col(ApiKey.key_hash),
    col(ApiKey.role_name),
    col(ApiKey.created_by),
    col(ApiKey.expires_at),
    col(ApiKey.revoked_at),
    col(ApiKey.last_used_at),
)
_KEY_BY_PREFIX = select(*_KEY_COLUMNS).where(col(ApiKey.prefix) == bindparam("prefix"))
_KEY_PREFIX = select(col(ApiKey.prefix)).where(col(ApiKey.id) == bindparam("key_id"))


def _key_record(row: Sequence[Any]) -> KeyRecord:
    key_id, name, key_hash, role_name, created_by, expires_at, revoked_at, last_used_at = row
    return KeyRecord(
        id=uuid.UUID(str(key_id)),
        name=name,
        key_hash=key_hash,
        role_name=role_name,
        created_by=created_by,
        expires_at=expires_at,
        revoked_at=revoked_at,
        last_used_at=last_used_at,
    )


class ApiKeyCache:
    """API key prefix → its row, per process, bounded; the same rules as :class:`CredentialsCache`.

    An entry is dropped at once in the process that revokes the key (after
    commit), in every other process when ``auth.api_key.revoked`` reaches it,
    and reloaded after ``ttl`` seconds at the latest. A key's role and hash never
    change; its role's permissions come from :class:`RoleCache`, and its expiry
    is checked against the clock on every use. Unknown prefixes are not
    remembered: a key created a moment ago works at once.
    """

    MAX_ENTRIES = 100_000

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self._session_factory = session_factory
        self._ttl = ttl
        self._entries: dict[str, tuple[KeyRecord, float]] = {}
        self._prefixes: dict[uuid.UUID, str] = {}
        self._epoch = 0
        self.loads = 0

    def invalidate(self, key_ids: Iterable[uuid.UUID]) -> None:
        self._epoch += 1
        for key_id in key_ids:
            prefix = self._prefixes.pop(key_id, None)
            if prefix is not None:
                self._entries.pop(prefix, None)

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._prefixes.clear()

    def touched(self, key_id: uuid.UUID, at: datetime) -> None:
        """Remember a ``last_used_at`` this process wrote (no reload for it)."""
        prefix = self._prefixes.get(key_id)
        if prefix is None:
            return
        entry = self._entries.get(prefix)
        if entry is not None and entry[0].id == key_id:
            self._entries[prefix] = (replace(entry[0], last_used_at=at), entry[1])

    async def get(self, prefix: str) -> KeyRecord | None:
        """The key with this prefix; ``None`` when there is none."""
        entry = self._entries.get(prefix)
        if entry is not None and time.monotonic() - entry[1] < self._ttl:
            return entry[0]
        epoch = self._epoch
        loaded_at = time.monotonic()
        async with self._session_factory() as session:
            rows = await select_rows(session, _KEY_BY_PREFIX, _key_record, {"prefix": prefix})
        self.loads += 1
        if not rows:
            self._entries.pop(prefix, None)
            return None
        record: KeyRecord = rows[0]
        if epoch == self._epoch:  # else a revocation arrived during the read: use it once
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
                self._prefixes.clear()
            self._entries[prefix] = (record, loaded_at)
            self._prefixes[record.id] = prefix
        return record

    async def by_id(self, key_id: uuid.UUID) -> KeyRecord | None:
        """The key with this id, through the cache when it holds it (an open stream's check)."""
        prefix = self._prefixes.get(key_id)
        if prefix is None:
            async with self._session_factory() as session:
                rows = await select_rows(session, _KEY_PREFIX, params={"key_id": key_id})
            if not rows:
                return None
            prefix = rows[0][0]
        record = await self.get(prefix)
        return record if record is not None and record.id == key_id else None


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
