"""Activity queries beyond the kit's: the list filters and the client timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    OrderKey,
    PageParams,
    Repository,
    Visibility,
    at_least,
    eq,
    one_of,
)
from crm2_deals.errors import ActivityNotFound
from crm2_deals.models import Activity
from crm2_deals.schemas.activities import ActivityFilters

activities = Repository(Activity, ActivityNotFound, owner=col(Activity.owner_id))
# Newest first; the id breaks ties between entries of the same instant.
NEWEST_FIRST = [OrderKey(col(Activity.occurred_at), True), OrderKey(col(Activity.id), True)]


async def list_activities(
    session: AsyncSession, vis: Visibility, filters: ActivityFilters, page: PageParams
) -> tuple[list[Any], str | None]:
    """A page of activities as plain rows (read by attribute: only shown)."""
    stmt = activities.filtered(
        vis,
        eq(col(Activity.client_id), filters.client),
        eq(col(Activity.deal_id), filters.deal),
        eq(col(Activity.policy_id), filters.policy),
        eq(col(Activity.owner_id), filters.owner),
        one_of(col(Activity.kind), filters.kind),
        at_least(col(Activity.updated_at), filters.updated_since),
    )
    return await activities.page_rows(session, stmt, page, keys=NEWEST_FIRST)


async def timeline(
    session: AsyncSession,
    vis: Visibility,
    client_id: uuid.UUID,
    kinds: tuple[str, ...],
    page: PageParams,
) -> tuple[list[Any], str | None]:
    """The client's entries and its deals' and policies' (every activity carries
    client_id), as plain rows."""
    stmt = activities.filtered(
        vis, eq(col(Activity.client_id), client_id), one_of(col(Activity.kind), kinds)
    )
    return await activities.page_rows(session, stmt, page, keys=NEWEST_FIRST)


async def reassign(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
    policy_id: uuid.UUID | None = None,
) -> None:
    """Give ``owner_id`` the activities whose most specific record is the one named."""
    stmt = update(Activity).values(owner_id=owner_id)
    if policy_id is not None:
        stmt = stmt.where(col(Activity.policy_id) == policy_id)
    elif deal_id is not None:
        stmt = stmt.where(col(Activity.deal_id) == deal_id, col(Activity.policy_id).is_(None))
    elif client_id is not None:
        stmt = stmt.where(
            col(Activity.client_id) == client_id,
            col(Activity.deal_id).is_(None),
            col(Activity.policy_id).is_(None),
        )
    else:
        raise ValueError("reassign needs a client, deal or policy id")
    await session.execute(stmt.execution_options(synchronize_session=False))


async def move_to_client(session: AsyncSession, deal_id: uuid.UUID, client_id: uuid.UUID) -> None:
    """A deal moved to another client takes its activities along (every activity carries
    its client: the client's timeline, and the cascade when the client is deleted)."""
    stmt = update(Activity).where(col(Activity.deal_id) == deal_id).values(client_id=client_id)
    await session.execute(stmt.execution_options(synchronize_session=False))


async def unlink_deal_of_policy_entries(session: AsyncSession, deal_id: uuid.UUID) -> None:
    """Before a deal is deleted: the entries also about a policy (issued, cancelled…) stay
    with the policy, which outlives the deal (its ``deal_id`` is set to null)."""
    stmt = (
        update(Activity)
        .where(col(Activity.deal_id) == deal_id, col(Activity.policy_id).is_not(None))
        .values(deal_id=None)
    )
    await session.execute(stmt.execution_options(synchronize_session=False))


async def reassign_records(
    session: AsyncSession,
    owner_id: uuid.UUID,
    deal_ids: Sequence[uuid.UUID],
    policy_ids: Sequence[uuid.UUID],
) -> None:
    """``reassign`` for many deals and policies at once: the activities whose most
    specific record is one of them go to ``owner_id``."""
    clauses = []
    if deal_ids:
        clauses.append(and_(col(Activity.deal_id).in_(deal_ids), col(Activity.policy_id).is_(None)))
    if policy_ids:
        clauses.append(col(Activity.policy_id).in_(policy_ids))
    if clauses:
        stmt = update(Activity).where(or_(*clauses)).values(owner_id=owner_id)
        await session.execute(stmt.execution_options(synchronize_session=False))
