"""Every query on deals and their stage history, with the visibility rule applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import OrderKey, PageParams, paginate, sort_order
from crm2_deals.models import Client, Deal, Pipeline, Stage, StageMove
from crm2_deals.visibility import Visibility

DEAL_SORTS: dict[str, Any] = {
    "title": Deal.title,
    "value": Deal.value_minor,
    "created_at": Deal.created_at,
    "updated_at": Deal.updated_at,
}


@dataclass(frozen=True)
class DealFilters:
    """Money bounds are minor units of ``currency`` (the service converts them)."""

    owner: uuid.UUID | None = None
    stage: uuid.UUID | None = None
    status: str | None = None
    pipeline: uuid.UUID | None = None
    client: uuid.UUID | None = None
    currency: str | None = None
    value_min_minor: int | None = None
    value_max_minor: int | None = None
    expected_close_from: date | None = None
    expected_close_to: date | None = None
    updated_since: datetime | None = None
    q: str | None = None


def deal_select(visibility: Visibility, f: DealFilters) -> Select[Any]:
    stmt = select(Deal).where(visibility.where(Deal.owner_id))
    equal = {
        Deal.owner_id: f.owner,
        Deal.stage_id: f.stage,
        Deal.status: f.status,
        Deal.pipeline_id: f.pipeline,
        Deal.client_id: f.client,
        Deal.currency: f.currency,
    }
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if f.value_min_minor is not None:
        stmt = stmt.where(Deal.value_minor >= f.value_min_minor)
    if f.value_max_minor is not None:
        stmt = stmt.where(Deal.value_minor <= f.value_max_minor)
    if f.expected_close_from is not None:
        stmt = stmt.where(Deal.expected_close_date >= f.expected_close_from)
    if f.expected_close_to is not None:
        stmt = stmt.where(Deal.expected_close_date <= f.expected_close_to)
    if f.updated_since is not None:
        stmt = stmt.where(Deal.updated_at >= f.updated_since)
    if f.q:
        stmt = stmt.where(func.lower(Deal.title).contains(f.q.strip().lower(), autoescape=True))
    return stmt


async def list_deals(
    session: AsyncSession,
    visibility: Visibility,
    filters: DealFilters,
    sort: str,
    page: PageParams,
) -> tuple[list[Deal], str | None]:
    keys = sort_order(sort, DEAL_SORTS, Deal.id)
    return await paginate(session, deal_select(visibility, filters), keys, page)


async def get_deal(
    session: AsyncSession, visibility: Visibility, deal_id: uuid.UUID
) -> Deal | None:
    stmt = select(Deal).where(Deal.id == deal_id, visibility.where(Deal.owner_id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def delete_deal(session: AsyncSession, deal_id: uuid.UUID) -> None:
    await session.execute(delete(Deal).where(Deal.id == deal_id))


async def history(
    session: AsyncSession, deal_id: uuid.UUID, page: PageParams
) -> tuple[list[StageMove], str | None]:
    """The stage moves of a deal the caller already proved they can see, oldest first."""
    stmt = select(StageMove).where(StageMove.deal_id == deal_id)
    keys = [OrderKey(StageMove.moved_at), OrderKey(StageMove.id)]
    return await paginate(session, stmt, keys, page)


# -- names for the CSV export ----------------------------------------------------------


async def stage_and_pipeline_names(
    session: AsyncSession,
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    stages = await session.execute(select(Stage.id, Stage.name))
    pipelines = await session.execute(select(Pipeline.id, Pipeline.name))
    return {i: n for i, n in stages.all()}, {i: n for i, n in pipelines.all()}


async def client_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    stmt = select(Client.id, Client.name).where(Client.id.in_(wanted))
    return {i: n for i, n in (await session.execute(stmt)).all()}
