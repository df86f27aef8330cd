"""Every auth query."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from crm2_core.auth.models import (
    ApiKey,
    PermissionRecord,
    RefreshToken,
    Role,
    RolePermission,
    User,
    UserRole,
)
from crm2_core.db import utcnow
from crm2_core.db.direct import DirectSelect, ReadConnection
from crm2_core.db.pagination import OrderKey, PageParams, paginate
from crm2_core.db.turns import take_turns


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(col(User.email) == email.lower()))).scalar()


async def all_emails(session: AsyncSession) -> list[str]:
    """Every user's address (users are people: a few thousand at most)."""
    return list((await session.execute(select(col(User.email)))).scalars())


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id, populate_existing=True)


async def user_for_share(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user as committed now, kept so (``FOR SHARE`` on PostgreSQL) until the
    transaction ends: a concurrent change of them waits for it."""
    stmt = (
        select(User)
        .where(col(User.id) == user_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar()


async def lock_users(
    session: AsyncSession, read: Iterable[uuid.UUID], written: Iterable[uuid.UUID]
) -> None:
    """Lock users' rows until the transaction ends, in id order (so two transactions
    locking the same two never wait for each other in a circle): ``read`` ones ``FOR
    SHARE`` (whose authority a change stands on), ``written`` ones ``FOR NO KEY UPDATE``
    (as the change's own UPDATE would; a row in both is written). SQLite writes one
    transaction at a time already."""
    written = set(written)
    for user_id in sorted({*read, *written}, key=str):
        stmt = select(col(User.id)).where(col(User.id) == user_id)
        if user_id in written:
            stmt = stmt.with_for_update(key_share=True)
        else:
            stmt = stmt.with_for_update(read=True)
        await session.execute(stmt)


async def lock_roles(session: AsyncSession, read: Iterable[str], written: Iterable[str]) -> None:
    """As ``lock_users``, for roles, in name order."""
    written = set(written)
    for name in sorted({*read, *written}):
        stmt = select(col(Role.name)).where(col(Role.name) == name)
        if name in written:
            stmt = stmt.with_for_update(key_share=True)
        else:
            stmt = stmt.with_for_update(read=True)
        await session.execute(stmt)


_PUBLIC_USER_COLUMNS = (
    col(User.id),
    col(User.email),
    col(User.full_name),
    col(User.is_active),
    col(User.created_at),
    col(User.updated_at),
    col(User.version),
)


# Built once: the path every page load takes should not rebuild (and re-key) the
# statement per request. Plain columns, nothing the ORM would add: run on a Core read
# connection (``http.deps.read_connection``), straight through the driver on PostgreSQL.
_PUBLIC_USER = DirectSelect(
    select(*_PUBLIC_USER_COLUMNS, col(UserRole.role_name))
    .outerjoin(UserRole, col(UserRole.user_id) == col(User.id))
    .where(col(User.id) == bindparam("user_id"))
    .order_by(col(UserRole.role_name))
)
_PUBLIC_USER_NAMES = tuple(str(column.key) for column in _PUBLIC_USER.statement.selected_columns)[
    :-1
]


async def public_user(
    connection: ReadConnection | AsyncConnection, user_id: uuid.UUID
) -> dict[str, Any] | None:
    """A user's public fields with ``roles``, in one query."""
    rows = await _PUBLIC_USER.rows(connection, {"user_id": user_id})
    if not rows:
        return None
    user = dict(zip(_PUBLIC_USER_NAMES, rows[0][:-1], strict=True))
    user["roles"] = [row[-1] for row in rows if row[-1] is not None]
    return user


# pg_advisory_xact_lock key of the changes that may leave fewer admins ("crm5")
ADMINS_LOCK = 0x63726D35


async def lock_admins(session: AsyncSession) -> None:
    """Be the only transaction that may remove an admin until this one ends.

    Two concurrent removals would each count the other admin still active (write
    skew): whoever waits here counts after the other committed. SQLite writes one
    transaction at a time already.
    """
    await take_turns(session, ADMINS_LOCK)


async def count_active_admins(session: AsyncSession, excluding: uuid.UUID | None = None) -> int:
    """Active users holding the admin role (other than ``excluding``)."""
    stmt = (
        select(func.count())
        .select_from(UserRole)
        .join(User, col(User.id) == col(UserRole.user_id))
        .where(col(UserRole.role_name) == "admin", col(User.is_active).is_(True))
    )
    if excluding is not None:
        stmt = stmt.where(col(User.id) != excluding)
    return int((await session.execute(stmt)).scalar_one())


async def list_users(session: AsyncSession, page: PageParams) -> tuple[list[User], str | None]:
    keys = [OrderKey(col(User.created_at)), OrderKey(col(User.id))]
    return await paginate(session, select(User), keys, page)


async def roles_of(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    ids = list(user_ids)
    result: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = await session.execute(
        select(col(UserRole.user_id), col(UserRole.role_name))
        .where(col(UserRole.user_id).in_(ids))
        .order_by(col(UserRole.role_name))
    )
    for user_id, role in rows:
        result[user_id].append(role)
    return result


async def set_roles(session: AsyncSession, user_id: uuid.UUID, roles: Iterable[str]) -> None:
    await session.execute(delete(UserRole).where(col(UserRole.user_id) == user_id))
    session.add_all([UserRole(user_id=user_id, role_name=r) for r in sorted(set(roles))])
    await session.flush()


async def existing_roles(
    session: AsyncSession, names: Iterable[str], *, lock: bool = False
) -> set[str]:
    """The roles of ``names`` that exist; ``lock``: kept so (``FOR SHARE`` on PostgreSQL;
    SQLite writes one at a time) until the transaction ends, for a row about to name them."""
    wanted = set(names)
    if not wanted:
        return set()
    stmt = select(col(Role.name)).where(col(Role.name).in_(wanted))
    if lock:
        stmt = stmt.with_for_update(read=True)
    return set((await session.execute(stmt)).scalars())


async def role(session: AsyncSession, name: str) -> Role | None:
    return await session.get(Role, name, populate_existing=True)


async def list_roles(session: AsyncSession) -> list[Role]:
    return list((await session.execute(select(Role).order_by(col(Role.name)))).scalars())


async def permissions_of_roles(session: AsyncSession, names: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(names)
    result: dict[str, list[str]] = {n: [] for n in wanted}
    rows = await session.execute(
        select(col(RolePermission.role_name), col(RolePermission.permission))
        .where(col(RolePermission.role_name).in_(wanted))
        .order_by(col(RolePermission.permission))
    )
    for role_name, permission in rows:
        result[role_name].append(permission)
    return result


async def set_role_permissions(
    session: AsyncSession, name: str, permissions: Iterable[str]
) -> None:
    await session.execute(delete(RolePermission).where(col(RolePermission.role_name) == name))
    session.add_all(
        [RolePermission(role_name=name, permission=p) for p in sorted(set(permissions))]
    )
    await session.flush()


async def role_in_use(session: AsyncSession, name: str) -> bool:
    users = await session.execute(
        select(col(UserRole.user_id)).where(col(UserRole.role_name) == name).limit(1)
    )
    keys = await session.execute(
        select(col(ApiKey.id))
        .where(col(ApiKey.role_name) == name, col(ApiKey.revoked_at).is_(None))
        .limit(1)
    )
    return users.first() is not None or keys.first() is not None


async def delete_revoked_api_keys_of_role(session: AsyncSession, name: str) -> None:
    """Delete the revoked keys bound to role ``name`` (the keys they made keep theirs)."""
    await session.execute(
        delete(ApiKey).where(col(ApiKey.role_name) == name, col(ApiKey.revoked_at).is_not(None))
    )


async def known_permissions(session: AsyncSession) -> dict[str, PermissionRecord]:
    rows = await session.execute(select(PermissionRecord))
    return {p.name: p for p in rows.scalars()}


async def list_permissions(session: AsyncSession) -> list[PermissionRecord]:
    rows = await session.execute(select(PermissionRecord).order_by(col(PermissionRecord.name)))
    return list(rows.scalars())


async def refresh_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(col(RefreshToken.token_hash) == token_hash)
    return (await session.execute(stmt)).scalar()


async def refresh_for_rotation(
    session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, int] | None:
    """The refresh token and its user's ``credentials_version``, read in one statement:
    what the user's credentials were when the token was found as it is."""
    stmt = (
        select(RefreshToken, col(User.credentials_version))
        .join(User, col(User.id) == col(RefreshToken.user_id))
        .where(col(RefreshToken.token_hash) == token_hash)
    )
    found = (await session.execute(stmt)).first()
    return None if found is None else (found[0], int(found[1]))


async def refresh_was_spent(session: AsyncSession, token_id: uuid.UUID) -> bool:
    """Whether the refresh token has been used, as committed now (gone counts as not)."""
    stmt = select(col(RefreshToken.used_at)).where(col(RefreshToken.id) == token_id)
    return (await session.execute(stmt)).scalar() is not None


async def spend_refresh(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Mark a refresh token used, only if nobody did first: the single-use guarantee."""
    result = await session.execute(
        update(RefreshToken)
        .where(
            col(RefreshToken.id) == token_id,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def revoke_user_tokens(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def list_api_keys(
    session: AsyncSession,
    page: PageParams,
    roles: Iterable[str] | None = None,
    created_by: uuid.UUID | None = None,
) -> tuple[list[ApiKey], str | None]:
    """Keys, oldest first; given ``roles``, only keys of those roles or made by ``created_by``."""
    stmt = select(ApiKey)
    if roles is not None:
        shown: list[ColumnElement[bool]] = [col(ApiKey.role_name).in_(sorted(set(roles)))]
        if created_by is not None:
            shown.append(col(ApiKey.created_by) == created_by)
        stmt = stmt.where(or_(*shown))
    keys = [OrderKey(col(ApiKey.created_at)), OrderKey(col(ApiKey.id))]
    return await paginate(session, stmt, keys, page)


async def api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id, populate_existing=True)


def _live_keys(now: datetime) -> Any:
    return select(ApiKey).where(
        col(ApiKey.revoked_at).is_(None),
        (col(ApiKey.expires_at).is_(None)) | (col(ApiKey.expires_at) > now),
    )


async def live_api_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key neither revoked nor expired."""
    return list((await session.execute(_live_keys(utcnow()))).scalars())


async def live_api_keys_created_by(session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    stmt = _live_keys(utcnow()).where(col(ApiKey.created_by) == user_id)
    return list((await session.execute(stmt)).scalars())


async def live_api_keys_made_by_keys(
    session: AsyncSession, key_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    ids = list(key_ids)
    if not ids:
        return set()
    stmt = select(col(ApiKey.id)).where(
        col(ApiKey.revoked_at).is_(None), col(ApiKey.created_by_key).in_(ids)
    )
    return set((await session.execute(stmt)).scalars())


async def revoke_api_keys(
    session: AsyncSession, key_ids: Iterable[uuid.UUID], now: datetime
) -> None:
    await session.execute(
        update(ApiKey)
        .where(col(ApiKey.id).in_(list(key_ids)), col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def active_user_ids(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    ids = list(user_ids)
    if not ids:
        return set()
    stmt = select(col(User.id)).where(col(User.id).in_(ids), col(User.is_active).is_(True))
    return set((await session.execute(stmt)).scalars())
