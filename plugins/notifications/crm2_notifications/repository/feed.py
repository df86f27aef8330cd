"""A user's feed: always filtered by its owner in SQL (another user's id answers 404)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import Repository, Sorts, Visibility
from crm2_notifications.errors import NotificationNotFound
from crm2_notifications.models import Notification

FEED = Repository(
    Notification,
    NotificationNotFound,
    owner=Notification.user_id,
    sorts=Sorts(
        {"created_at": Notification.created_at},
        id_column=Notification.id,
        default="-created_at",
    ),
    noun="notification",
)


def feed(visibility: Visibility, unread_only: bool = False, *, rows: bool = False) -> Select[Any]:
    """The feed's notifications; ``rows``: selecting the table's columns (``page_rows``)."""
    base = FEED.visible_rows(visibility) if rows else FEED.visible(visibility)
    stmt = base.where(col(Notification.in_feed).is_(True))
    if unread_only:
        stmt = stmt.where(col(Notification.read_at).is_(None))
    return stmt


async def get(session: AsyncSession, visibility: Visibility, id: uuid.UUID) -> Notification:
    stmt = feed(visibility).where(col(Notification.id) == id)
    row: Notification | None = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotificationNotFound(f"no notification {id}")
    return row


async def unread_count(session: AsyncSession, visibility: Visibility) -> int:
    stmt = (
        select(func.count())
        .select_from(Notification)
        .where(
            visibility.where(Notification.user_id),
            col(Notification.in_feed).is_(True),
            col(Notification.read_at).is_(None),
        )
    )
    return int((await session.execute(stmt)).scalar_one())


async def mark_read(
    session: AsyncSession, visibility: Visibility, ids: list[uuid.UUID] | None, now: datetime
) -> list[uuid.UUID]:
    """Mark ``ids`` (``None``: every unread one) read; returns the ids that changed."""
    where = [
        visibility.where(Notification.user_id),
        col(Notification.in_feed).is_(True),
        col(Notification.read_at).is_(None),
    ]
    if ids is not None:
        where.append(col(Notification.id).in_(ids))
    # One statement: a concurrent mark of the same rows waits for this one, then finds
    # them read (PostgreSQL re-checks ``read_at IS NULL``), so each is announced once.
    marked = await session.execute(
        update(Notification)
        .where(*where)
        .values(read_at=now)
        .returning(col(Notification.id))
        .execution_options(synchronize_session=False)
    )
    return list(marked.scalars())


async def exists_for(
    session: AsyncSession, rule_id: uuid.UUID, event_id: uuid.UUID
) -> set[uuid.UUID]:
    """Recipients who already have this (rule, event)'s notification."""
    stmt = select(col(Notification.user_id)).where(
        col(Notification.rule_id) == rule_id, col(Notification.event_id) == event_id
    )
    return set((await session.execute(stmt)).scalars())
