"""Deal queries beyond the kit's: filters, stage history, names for the export."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from sqlalchemy import Row, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    Currency,
    Derived,
    Filter,
    Filtered,
    IsoDate,
    IsoDateTime,
    OrderKey,
    PageParams,
    Repository,
    Sorts,
    Visibility,
    at_least,
    at_most,
    contains_text,
    eq,
    paginate,
)
from crm2_deals.errors import DealNotFound
from crm2_deals.models import Client, Deal, Pipeline, Policy, Stage, StageMove

DEAL_SORTS = Sorts(
    {
        "title": col(Deal.title),
        "value": col(Deal.value_minor),
        "created_at": col(Deal.created_at),
        "updated_at": col(Deal.updated_at),
    },
    id_column=col(Deal.id),
    default="-updated_at",
)
deals = Repository(Deal, DealNotFound, owner=col(Deal.owner_id), sorts=DEAL_SORTS)


# A decimal string compared in ``currency``'s minor units (the service converts it).
Money = Annotated[
    str | None, Filter("a decimal string; needs currency", pattern=r"^[0-9]{1,15}(\.[0-9]{1,6})?$")
]


@dataclass(frozen=True)
class DealFilters:
    """The list's (and export's) query parameters, declared once (``query_filters``)."""

    owner: Annotated[uuid.UUID | None, Filter("owner's user id")] = None
    stage: uuid.UUID | None = None
    status: Literal["open", "won", "lost"] | None = None
    pipeline: uuid.UUID | None = None
    client: uuid.UUID | None = None
    currency: Annotated[Currency | None, Filter("ISO 4217")] = None
    value_min: Money = None
    value_max: Money = None
    expected_close_from: IsoDate | None = None
    expected_close_to: IsoDate | None = None
    updated_since: IsoDateTime | None = None
    q: Annotated[str | None, Filter("in the title", max_length=200)] = None
    value_min_minor: Annotated[int | None, Derived] = None
    value_max_minor: Annotated[int | None, Derived] = None


def deal_select(visibility: Visibility, f: DealFilters) -> Filtered:
    return deals.filtered(
        visibility,
        eq(col(Deal.owner_id), f.owner),
        eq(col(Deal.stage_id), f.stage),
        eq(col(Deal.status), f.status),
        eq(col(Deal.pipeline_id), f.pipeline),
        eq(col(Deal.client_id), f.client),
        eq(col(Deal.currency), f.currency),
        at_least(col(Deal.value_minor), f.value_min_minor),
        at_most(col(Deal.value_minor), f.value_max_minor),
        at_least(col(Deal.expected_close_date), f.expected_close_from),
        at_most(col(Deal.expected_close_date), f.expected_close_to),
        at_least(col(Deal.updated_at), f.updated_since),
        contains_text(f.q, col(Deal.title)),
    )


async def list_deals(
    session: AsyncSession, visibility: Visibility, filters: DealFilters, sort: str, page: PageParams
) -> tuple[list[Row[Any]], str | None]:
    """A page of deals as plain rows (shown by the list and written by the export)."""
    return await deals.page_rows(session, deal_select(visibility, filters), page, sort=sort)


async def history(
    session: AsyncSession, deal_id: uuid.UUID, page: PageParams
) -> tuple[list[StageMove], str | None]:
    """The stage moves of a deal the caller already proved they can see, oldest first."""
    stmt = select(StageMove).where(col(StageMove.deal_id) == deal_id)
    keys = [OrderKey(col(StageMove.moved_at)), OrderKey(col(StageMove.id))]
    return await paginate(session, stmt, keys, page)


async def latest_moves(session: AsyncSession, deal_id: uuid.UUID, limit: int) -> list[StageMove]:
    """The deal's ``limit`` most recent stage moves, newest first (its timeline)."""
    stmt = (
        select(StageMove)
        .where(col(StageMove.deal_id) == deal_id)
        .order_by(col(StageMove.moved_at).desc(), col(StageMove.id).desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def stage_and_pipeline_names(
    session: AsyncSession,
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    stages = await session.execute(select(col(Stage.id), col(Stage.name)))
    pipelines = await session.execute(select(col(Pipeline.id), col(Pipeline.name)))
    return {i: n for i, n in stages.all()}, {i: n for i, n in pipelines.all()}


async def client_names(
    session: AsyncSession, visibility: Visibility, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Names of the clients among ``ids`` the caller may see: a deal of one's own can sit
    on another agent's client, whose name is theirs to show (``GET`` of it is a 404)."""
    wanted = set(ids)
    if not wanted:
        return {}
    stmt = select(col(Client.id), col(Client.name)).where(
        col(Client.id).in_(wanted), visibility.where(col(Client.owner_id))
    )
    return {i: n for i, n in (await session.execute(stmt)).all()}


async def has_policies(session: AsyncSession, deal_id: uuid.UUID) -> bool:
    stmt = select(exists().where(col(Policy.deal_id) == deal_id))
    return bool((await session.execute(stmt)).scalar())


async def owned_by(session: AsyncSession, owner_id: uuid.UUID) -> list[Deal]:
    """Every deal ``owner_id`` owns (an owner hand-over puts each to the veto hook)."""
    stmt = select(Deal).where(col(Deal.owner_id) == owner_id).order_by(col(Deal.id))
    return list((await session.execute(stmt)).scalars())


async def owned_on_client(
    session: AsyncSession, client_id: uuid.UUID, owner_id: uuid.UUID
) -> list[Deal]:
    """``owner_id``'s deals on one client (a client's hand-over puts each to the veto hook)."""
    stmt = (
        select(Deal)
        .where(col(Deal.client_id) == client_id, col(Deal.owner_id) == owner_id)
        .order_by(col(Deal.id))
    )
    return list((await session.execute(stmt)).scalars())
