"""Retention: feed entries, their deliveries and the delivery log older than
``retention_days`` are deleted by the ``digests`` job, in bounded batches.

An entry goes at its age whether it was read or not: entries that are not in the feed
(``in_feed`` false: only the text of an e-mail or a Telegram message) are never read,
nor are those of a user who never opens the feed, so "unread ones stay" would keep
them forever. An entry with a delivery still to be sent (``pending``, ``sending``,
``digest``) stays until that delivery is settled. Webhook deliveries (no feed entry)
go at their age once settled. Each batch is its own short transaction, and a run stops
after ``MAX_BATCHES`` so a large backlog is worked off over several runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_notifications import clock
from crm2_notifications.models import Delivery, DeliveryAttempt, Notification

BATCH = 500  # ids per statement: well within SQLite's bound parameters
MAX_BATCHES = 20  # per run: 10,000 entries every five minutes
UNSETTLED = ("pending", "sending", "digest")


async def prune(context: Any, now: datetime | None = None) -> int:
    """Delete what is past retention; returns how many feed entries and webhook
    deliveries went."""
    days = context.plugin_settings("notifications").retention_days
    if days <= 0:
        return 0
    cutoff = (now or clock.now(context)) - timedelta(days=days)
    removed = 0
    for _ in range(MAX_BATCHES):
        async with context.session_factory() as session:
            gone = await _notifications(session, cutoff) or await _webhook_deliveries(
                session, cutoff
            )
            await session.commit()
        if not gone:
            break
        removed += gone
    return removed


async def _notifications(session: AsyncSession, cutoff: datetime) -> int:
    waiting = select(col(Delivery.notification_id)).where(
        col(Delivery.notification_id) == col(Notification.id),
        col(Delivery.status).in_(UNSETTLED),
    )
    stmt = (
        select(col(Notification.id))
        .where(col(Notification.created_at) < cutoff, ~waiting.exists())
        .order_by(col(Notification.created_at), col(Notification.id))
        .limit(BATCH)
    )
    ids = list((await session.execute(stmt)).scalars())
    if ids:
        deliveries = select(col(Delivery.id)).where(col(Delivery.notification_id).in_(ids))
        await _deliveries(session, list((await session.execute(deliveries)).scalars()))
        await session.execute(delete(Notification).where(col(Notification.id).in_(ids)))
    return len(ids)


async def _webhook_deliveries(session: AsyncSession, cutoff: datetime) -> int:
    stmt = (
        select(col(Delivery.id))
        .where(
            col(Delivery.notification_id).is_(None),
            col(Delivery.created_at) < cutoff,
            col(Delivery.status).not_in(UNSETTLED),
        )
        .order_by(col(Delivery.created_at), col(Delivery.id))
        .limit(BATCH)
    )
    ids = list((await session.execute(stmt)).scalars())
    await _deliveries(session, ids)
    return len(ids)


async def _deliveries(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    """The deliveries and their attempts, not left to ON DELETE CASCADE (SQLite runs it
    only with foreign keys switched on)."""
    if ids:
        await session.execute(
            delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(ids))
        )
        await session.execute(delete(Delivery).where(col(Delivery.id).in_(ids)))
