"""A user's feed: list, unread count, mark read. Always the caller's own rows."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import PageParams, acting_user, publish
from crm2_hookspecs import Principal
from crm2_notifications import clock
from crm2_notifications.errors import NotificationNotFound
from crm2_notifications.events import FeedRead
from crm2_notifications.models import Delivery, DeliveryAttempt, Notification
from crm2_notifications.repository import deliveries as delivery_repo
from crm2_notifications.repository import feed as repo
from crm2_notifications.visibility import own


async def page(
    session: AsyncSession, principal: Principal, params: PageParams, unread_only: bool
) -> tuple[list[Any], str | None]:
    """A page of the caller's feed as plain rows (read by attribute: only shown)."""
    stmt = repo.feed(own(principal), unread_only, rows=True)
    return await repo.FEED.page_rows(session, stmt, params)


async def get(session: AsyncSession, principal: Principal, id: uuid.UUID) -> Notification:
    return await repo.get(session, own(principal), id)


async def unread(session: AsyncSession, principal: Principal) -> int:
    return await repo.unread_count(session, own(principal))


async def mark_read(
    session: AsyncSession, context: Any, principal: Principal, ids: list[uuid.UUID] | None
) -> tuple[int, int]:
    """Mark ``ids`` (``None``: all) read; returns (marked, unread left). Ids of others: ignored."""
    visibility = own(principal)
    changed = await repo.mark_read(session, visibility, ids, clock.now(context))
    left = await repo.unread_count(session, visibility)
    if changed:
        publish(
            session,
            FeedRead(
                user_id=acting_user(principal),
                notification_ids=changed[:500],
                all_read=ids is None,
                unread=left,
            ),
            subject=acting_user(principal),
            actor=principal,
        )
    return len(changed), left


async def mark_one(
    session: AsyncSession, context: Any, principal: Principal, id: uuid.UUID
) -> Notification:
    row = await repo.get(session, own(principal), id)  # 404 for another user's
    await mark_read(session, context, principal, [id])
    await session.refresh(row)
    return row


async def deliveries(
    session: AsyncSession, principal: Principal, id: uuid.UUID, admin: bool
) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
    """A notification's deliveries and their attempts: its owner's, or any for an admin
    (``notifications:admin``); anyone else's id answers 404 like a missing one."""
    owner = await delivery_repo.notification_owner(session, id)
    if owner is None or (not admin and owner != acting_user(principal)):
        raise NotificationNotFound(f"no notification {id}")
    return await delivery_repo.of_notification(session, id)
