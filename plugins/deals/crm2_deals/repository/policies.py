"""Policy queries beyond the kit's: numbering, renewals, status changes and the daily job."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    PageParams,
    Repository,
    Sorts,
    Visibility,
    at_least,
    at_most,
    contains_text,
    eq,
    one_of,
    utcnow,
    where_all,
)
from crm2_deals.errors import PolicyNotFound
from crm2_deals.models import Policy
from crm2_deals.schemas.policies import SORT_FIELDS, PolicyFilters

POLICY_SORTS = Sorts(
    {name: getattr(Policy, name) for name in SORT_FIELDS},
    id_column=Policy.id,
    default="-updated_at",
)
policies = Repository(Policy, PolicyNotFound, owner=Policy.owner_id, sorts=POLICY_SORTS)


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
    stmt = where_all(
        policies.visible(vis),
        eq(Policy.owner_id, filters.owner),
        eq(Policy.client_id, filters.client),
        eq(Policy.deal_id, filters.deal),
        one_of(Policy.status, filters.status),
        eq(Policy.insurer, filters.insurer),
        at_most(Policy.end_date, filters.end_before),
        at_least(Policy.end_date, filters.end_after),
        at_least(Policy.updated_at, filters.updated_since),
        contains_text(filters.q, Policy.number, Policy.insurer),
    )
    return await policies.page(session, stmt, page, sort=filters.sort)


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
