"""The delivery log."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import PageParams, Repository, Sorts, Visibility, eq, where_all
from crm2_notifications.errors import DeliveryNotFound
from crm2_notifications.models import Delivery

Status = Literal["pending", "sending", "digest", "delivered", "dead"]
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
