"""Every activity query, each filtered by the caller's ``Visibility``."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import OrderKey, PageParams, paginate
from crm2_deals.models import Activity
from crm2_deals.schemas.activities import ActivityFilters
from crm2_deals.visibility import Visibility

# Newest first; the id breaks ties between entries of the same instant.
NEWEST_FIRST = [OrderKey(Activity.occurred_at, True), OrderKey(Activity.id, True)]


async def get(session: AsyncSession, vis: Visibility, activity_id: uuid.UUID) -> Activity | None:
    stmt = (
        select(Activity)
        .where(Activity.id == activity_id, vis.where(Activity.owner_id))
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_activities(
    session: AsyncSession, vis: Visibility, filters: ActivityFilters, page: PageParams
) -> tuple[list[Activity], str | None]:
    stmt = select(Activity).where(vis.where(Activity.owner_id))
    if filters.client is not None:
        stmt = stmt.where(Activity.client_id == filters.client)
    if filters.deal is not None:
        stmt = stmt.where(Activity.deal_id == filters.deal)
    if filters.policy is not None:
        stmt = stmt.where(Activity.policy_id == filters.policy)
    if filters.owner is not None:
        stmt = stmt.where(Activity.owner_id == filters.owner)
    if filters.kind:
        stmt = stmt.where(Activity.kind.in_(filters.kind))
    if filters.updated_since is not None:
        stmt = stmt.where(Activity.updated_at >= filters.updated_since)
    return await paginate(session, stmt, NEWEST_FIRST, page)


async def timeline(
    session: AsyncSession,
    vis: Visibility,
    client_id: uuid.UUID,
    kinds: tuple[str, ...],
    page: PageParams,
) -> tuple[list[Activity], str | None]:
    """The client's entries and its deals' and policies' (every activity carries client_id)."""
    stmt = select(Activity).where(Activity.client_id == client_id, vis.where(Activity.owner_id))
    if kinds:
        stmt = stmt.where(Activity.kind.in_(kinds))
    return await paginate(session, stmt, NEWEST_FIRST, page)


async def delete_one(session: AsyncSession, activity_id: uuid.UUID) -> None:
    await session.execute(delete(Activity).where(Activity.id == activity_id))
