"""Policy queries beyond the kit's: numbering, renewals, status changes and the daily job."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

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
)
from crm2_deals.errors import PolicyNotFound
from crm2_deals.models import Policy
from crm2_deals.schemas.policies import SORT_FIELDS, PolicyFilters

POLICY_SORTS = Sorts(
    {name: getattr(Policy, name) for name in SORT_FIELDS},
    id_column=col(Policy.id),
    default="-updated_at",
)
policies = Repository(Policy, PolicyNotFound, owner=col(Policy.owner_id), sorts=POLICY_SORTS)


async def number_taken(
    session: AsyncSession, insurer: str, number: str, exclude: uuid.UUID | None = None
) -> bool:
    """Across every owner: the insurer's numbering is global, whoever may see the other policy."""
    stmt = select(col(Policy.id)).where(
        col(Policy.insurer) == insurer, col(Policy.number) == number
    )
    if exclude is not None:
        stmt = stmt.where(col(Policy.id) != exclude)
    return (await session.execute(stmt.limit(1))).first() is not None


async def open_renewal(session: AsyncSession, policy_id: uuid.UUID) -> uuid.UUID | None:
    """The policy's draft or active renewal (at most one: ``uq_deals_policy_open_renewal``)."""
    stmt = select(col(Policy.id)).where(
        col(Policy.renewal_of) == policy_id, col(Policy.status).in_(("draft", "active"))
    )
    found: uuid.UUID | None = (await session.execute(stmt.limit(1))).scalar()
    return found


async def lock_policy(session: AsyncSession, policy_id: uuid.UUID) -> Policy | None:
    """The policy read again under a row lock held to the commit (PostgreSQL ``FOR
    UPDATE``; SQLite's writers take turns already): a second renewal of it waits here
    until the first is committed, then finds it."""
    stmt = (
        select(Policy)
        .where(col(Policy.id) == policy_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row: Policy | None = (await session.execute(stmt)).scalar_one_or_none()
    return row


async def list_policies(
    session: AsyncSession,
    vis: Visibility,
    filters: PolicyFilters,
    sort: str,
    page: PageParams,
) -> tuple[list[Any], str | None]:
    """A page of policies as plain rows (read by attribute: only shown)."""
    stmt = policies.filtered(
        vis,
        eq(col(Policy.owner_id), filters.owner),
        eq(col(Policy.client_id), filters.client),
        eq(col(Policy.deal_id), filters.deal),
        one_of(col(Policy.status), filters.status),
        eq(col(Policy.insurer), filters.insurer),
        at_most(col(Policy.end_date), filters.end_before),
        at_least(col(Policy.end_date), filters.end_after),
        at_least(col(Policy.updated_at), filters.updated_since),
        contains_text(filters.q, col(Policy.number), col(Policy.insurer)),
    )
    return await policies.page_rows(session, stmt, page, sort=sort)


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
            col(Policy.id) == policy_id,
            col(Policy.version) == expected_version,
            col(Policy.status).in_(from_statuses),
        )
        .values(status=to_status, updated_at=utcnow(), version=col(Policy.version) + 1)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# -- the daily job ---------------------------------------------------------------------

_JOB_COLUMNS = (col(Policy.id), col(Policy.client_id), col(Policy.owner_id), col(Policy.end_date))


async def expire_batch(session: AsyncSession, today: date, limit: int) -> list[Row[Any]]:
    """Mark up to ``limit`` active policies that ended before ``today`` expired; return them.

    The ``WHERE status = 'active'`` is re-checked by the UPDATE itself, so two
    runs at once never both expire (and announce) the same policy.
    """
    candidates = (
        select(col(Policy.id))
        .where(col(Policy.status) == "active", col(Policy.end_date) < today)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        update(Policy)
        .where(
            col(Policy.id).in_(candidates),
            col(Policy.status) == "active",
            col(Policy.end_date) < today,
        )
        .values(status="expired", updated_at=utcnow(), version=col(Policy.version) + 1)
        .returning(*_JOB_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    rows: list[Row[Any]] = list((await session.execute(stmt)).all())  # type: ignore[arg-type]
    return rows


async def renewal_due_batch(
    session: AsyncSession, today: date, horizon: date, limit: int
) -> list[Row[Any]]:
    """Stamp ``renewal_notified_on`` on up to ``limit`` active policies ending by ``horizon``.

    Only policies not notified yet for their current end date qualify (a PATCH
    of ``end_date`` clears the stamp), so a second run the same day finds none.
    """
    due = (
        col(Policy.status) == "active",
        col(Policy.end_date) >= today,
        col(Policy.end_date) <= horizon,
        col(Policy.renewal_notified_on).is_(None),
    )
    candidates = select(col(Policy.id)).where(*due).limit(limit).scalar_subquery()
    stmt = (
        update(Policy)
        .where(col(Policy.id).in_(candidates), *due)
        .values(renewal_notified_on=today, updated_at=utcnow(), version=col(Policy.version) + 1)
        .returning(*_JOB_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    rows: list[Row[Any]] = list((await session.execute(stmt)).all())  # type: ignore[arg-type]
    return rows
