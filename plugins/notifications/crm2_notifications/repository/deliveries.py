"""The delivery log."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import PageParams, Repository, Sorts, Visibility, eq, where_all
from crm2_notifications.errors import DeliveryNotFound
from crm2_notifications.models import Delivery, DeliveryAttempt, Notification

Status = Literal["pending", "sending", "digest", "delivered", "dead", "skipped"]
DELIVERIES = Repository(
    Delivery,
    DeliveryNotFound,
    sorts=Sorts({"created_at": Delivery.created_at}, id_column=Delivery.id, default="-created_at"),
    noun="delivery",
)


async def page(
    session: AsyncSession, params: PageParams, status: str | None, channel: str | None
) -> tuple[list[Delivery], str | None]:
    stmt = where_all(
        DELIVERIES.visible(DELIVERIES_ALL),
        eq(Delivery.status, status),
        eq(Delivery.channel, channel),
    )
    return await DELIVERIES.page(session, stmt, params)


DELIVERIES_ALL = Visibility.system()


async def notification_owner(session: AsyncSession, notification_id: uuid.UUID) -> uuid.UUID | None:
    stmt = select(col(Notification.user_id)).where(col(Notification.id) == notification_id)
    owner: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return owner


async def of_notification(
    session: AsyncSession, notification_id: uuid.UUID
) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
    """The notification's deliveries by channel, each with its attempts in order."""
    stmt = (
        select(Delivery)
        .where(col(Delivery.notification_id) == notification_id)
        .order_by(col(Delivery.channel), col(Delivery.id))
    )
    rows = list((await session.execute(stmt)).scalars())
    attempts: dict[uuid.UUID, list[DeliveryAttempt]] = defaultdict(list)
    if rows:
        found = select(DeliveryAttempt).where(
            col(DeliveryAttempt.delivery_id).in_([d.id for d in rows])
        )
        for attempt in (
            await session.execute(found.order_by(col(DeliveryAttempt.attempt)))
        ).scalars():
            attempts[attempt.delivery_id].append(attempt)
    return [(d, attempts[d.id]) for d in rows]
