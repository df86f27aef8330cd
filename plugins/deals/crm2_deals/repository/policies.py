"""Every policy query, each filtered by the caller's ``Visibility``."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Row, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import PageParams, paginate, sort_order, utcnow
from crm2_deals.models import Client, Deal, Policy
from crm2_deals.schemas.policies import POLICY_SORTS, PolicyFilters
from crm2_deals.visibility import Visibility

POLICY_COLUMNS = {name: getattr(Policy, name) for name in POLICY_SORTS}


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards escaped (used with ``escape="\\\\"``)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- the records a policy (or an activity) links to ------------------------------------


async def visible_client(
    session: AsyncSession, vis: Visibility, client_id: uuid.UUID
) -> Client | None:
    stmt = select(Client).where(Client.id == client_id, vis.where(Client.owner_id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def visible_deal(session: AsyncSession, vis: Visibility, deal_id: uuid.UUID) -> Deal | None:
    stmt = select(Deal).where(Deal.id == deal_id, vis.where(Deal.owner_id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def user_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    from crm2_core.api import User

    stmt = select(User.id).where(User.id == user_id)
    return (await session.execute(stmt)).first() is not None


# -- policies --------------------------------------------------------------------------


async def get(session: AsyncSession, vis: Visibility, policy_id: uuid.UUID) -> Policy | None:
    stmt = (
        select(Policy)
        .where(Policy.id == policy_id, vis.where(Policy.owner_id))
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def number_taken(
    session: AsyncSession, insurer: str, number: str, exclude: uuid.UUID | None = None
) -> bool:
    """Across every owner: the insurer's numbering is global, whoever may see the other policy."""
    stmt = select(Policy.id).where(Policy.insurer == insurer, Policy.number == number)
    if exclude is not None:
        stmt = stmt.where(Policy.id != exclude)
    return (await session.execute(stmt.limit(1))).first() is not None


async def open_renewal_exists(session: AsyncSession, policy_id: uuid.UUID) -> bool:
    stmt = select(Policy.id).where(
        Policy.renewal_of == policy_id, Policy.status.in_(("draft", "active"))
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def list_policies(
    session: AsyncSession, vis: Visibility, filters: PolicyFilters, page: PageParams
) -> tuple[list[Policy], str | None]:
    stmt = select(Policy).where(vis.where(Policy.owner_id))
    if filters.owner is not None:
        stmt = stmt.where(Policy.owner_id == filters.owner)
    if filters.client is not None:
        stmt = stmt.where(Policy.client_id == filters.client)
    if filters.deal is not None:
        stmt = stmt.where(Policy.deal_id == filters.deal)
    if filters.status:
        stmt = stmt.where(Policy.status.in_(filters.status))
    if filters.insurer is not None:
        stmt = stmt.where(Policy.insurer == filters.insurer)
    if filters.end_before is not None:
        stmt = stmt.where(Policy.end_date <= filters.end_before)
    if filters.end_after is not None:
        stmt = stmt.where(Policy.end_date >= filters.end_after)
    if filters.updated_since is not None:
        stmt = stmt.where(Policy.updated_at >= filters.updated_since)
    if filters.q:
        pattern = like_pattern(filters.q)
        stmt = stmt.where(
            or_(
                func.lower(Policy.number).like(pattern, escape="\\"),
                func.lower(Policy.insurer).like(pattern, escape="\\"),
            )
        )
    keys = sort_order(filters.sort, POLICY_COLUMNS, Policy.id)
    return await paginate(session, stmt, keys, page)


async def change_status(
    session: AsyncSession,
    policy_id: uuid.UUID,
    expected_version: int,
    from_statuses: tuple[str, ...],
    to_status: str,
) -> bool:
    """Conditional ``UPDATE``: ``False`` when someone changed the policy first."""
    stmt = (
        update(Policy)
        .where(
            Policy.id == policy_id,
            Policy.version == expected_version,
            Policy.status.in_(from_statuses),
        )
        .values(status=to_status, updated_at=utcnow(), version=Policy.version + 1)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def delete_one(session: AsyncSession, policy_id: uuid.UUID) -> None:
    await session.execute(delete(Policy).where(Policy.id == policy_id))


# -- the daily job ---------------------------------------------------------------------

_JOB_COLUMNS = (Policy.id, Policy.client_id, Policy.owner_id, Policy.end_date)


async def expire_batch(session: AsyncSession, today: date, limit: int) -> list[Row[Any]]:
    """Mark up to ``limit`` active policies that ended before ``today`` expired; return them.

    The ``WHERE status = 'active'`` is re-checked by the UPDATE itself, so two
    runs at once never both expire (and announce) the same policy.
    """
    candidates = (
        select(Policy.id)
        .where(Policy.status == "active", Policy.end_date < today)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        update(Policy)
        .where(Policy.id.in_(candidates), Policy.status == "active", Policy.end_date < today)
        .values(status="expired", updated_at=utcnow(), version=Policy.version + 1)
        .returning(*_JOB_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(stmt)).all())


async def renewal_due_batch(
    session: AsyncSession, today: date, horizon: date, limit: int
) -> list[Row[Any]]:
    """Stamp ``renewal_notified_on`` on up to ``limit`` active policies ending by ``horizon``.

    Only policies not notified yet for their current end date qualify (a PATCH
    of ``end_date`` clears the stamp), so a second run the same day finds none.
    """
    due = (
        Policy.status == "active",
        Policy.end_date >= today,
        Policy.end_date <= horizon,
        Policy.renewal_notified_on.is_(None),  # type: ignore[union-attr]
    )
    candidates = select(Policy.id).where(*due).limit(limit).scalar_subquery()
    stmt = (
        update(Policy)
        .where(Policy.id.in_(candidates), *due)
        .values(renewal_notified_on=today, updated_at=utcnow(), version=Policy.version + 1)
        .returning(*_JOB_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(stmt)).all())
