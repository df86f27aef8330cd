"""Users, roles, preferences and per-user settings, read for the rules engine.

The core's user tables are named, not imported (STYLE.md: plugins point at
core tables by name).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import column, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_notifications.models import Preference, TelegramLink, UserSettings

_user = table("auth_user", column("id"), column("email"), column("full_name"), column("is_active"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def users_with_roles(session: AsyncSession, roles: Iterable[str]) -> set[uuid.UUID]:
    wanted = list(roles)
    if not wanted:
        return set()
    stmt = select(_user_role.c.user_id).where(_user_role.c.role_name.in_(wanted))
    return {_uuid(v) for v in (await session.execute(stmt)).scalars()}


async def active_people(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """id → (e-mail, full name) of the active users among ``ids``."""
    if not ids:
        return {}
    stmt = select(_user.c.id, _user.c.email, _user.c.full_name).where(
        _user.c.id.in_(list(ids)), _user.c.is_active.is_(True)
    )
    return {_uuid(i): (e, n or "") for i, e, n in (await session.execute(stmt)).all()}


async def preferences(
    session: AsyncSession, ids: Collection[uuid.UUID], event_type: str | None = None
) -> list[Preference]:
    if not ids:
        return []
    stmt = select(Preference).where(col(Preference.user_id).in_(list(ids)))
    if event_type is not None:
        stmt = stmt.where(col(Preference.event_type).in_([event_type, "*"]))
    return list((await session.execute(stmt)).scalars())


async def user_settings(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, UserSettings]:
    if not ids:
        return {}
    stmt = select(UserSettings).where(col(UserSettings.user_id).in_(list(ids)))
    return {row.user_id: row for row in (await session.execute(stmt)).scalars()}


async def telegram_chats(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The chats notifications go to: linked, and not disabled (a chat that blocked the bot)."""
    if not ids:
        return {}
    stmt = select(TelegramLink).where(
        col(TelegramLink.user_id).in_(list(ids)), col(TelegramLink.disabled_at).is_(None)
    )
    return {row.user_id: row.chat_id for row in (await session.execute(stmt)).scalars()}


async def disable_chat(
    session: AsyncSession, user_id: uuid.UUID, chat_id: int, reason: str, now: datetime
) -> None:
    """Stop notifying this user's chat, the reason kept (a link made since stays as it is)."""
    await session.execute(
        update(TelegramLink)
        .where(
            col(TelegramLink.user_id) == user_id,
            col(TelegramLink.chat_id) == chat_id,
            col(TelegramLink.disabled_at).is_(None),
        )
        .values(disabled_at=now, disabled_reason=reason[:300])
    )


async def user_of_chat(session: AsyncSession, chat_id: int) -> uuid.UUID | None:
    stmt = select(col(TelegramLink.user_id)).where(col(TelegramLink.chat_id) == chat_id)
    found = (await session.execute(stmt)).scalar_one_or_none()
    return _uuid(found) if found is not None else None
