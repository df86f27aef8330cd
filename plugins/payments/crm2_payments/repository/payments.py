"""Every query on payments and their ledger, with the visibility rule applied in SQL.

Money moves only through ``move_money``: one conditional UPDATE that checks the
invariant (never over-pay, never over-refund) and sets the status in the same
statement, so concurrent allocations on PostgreSQL and SQLite cannot break it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, case, func, literal, select, update
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
from crm2_payments.errors import PaymentNotFound, ScheduleNotFound
from crm2_payments.models import Allocation, Commission, Payment, Schedule

PAYMENT_SORTS = Sorts(
    {
        "due_date": Payment.due_date,
        "created_at": Payment.created_at,
        "updated_at": Payment.updated_at,
        "amount": Payment.amount_minor,
    },
    id_column=Payment.id,
    default="-created_at",
)
SCHEDULE_SORTS = Sorts(
    {"created_at": Schedule.created_at}, id_column=Schedule.id, default="-created_at"
)

payments = Repository(Payment, PaymentNotFound, owner=Payment.owner_id, sorts=PAYMENT_SORTS)
schedules = Repository(
    Schedule, ScheduleNotFound, owner=Schedule.owner_id, sorts=SCHEDULE_SORTS, noun="schedule"
)


@dataclass(frozen=True)
class PaymentFilters:
    statuses: tuple[str, ...] = ()
    direction: str | None = None
    currency: str | None = None
    policy_id: str | None = None
    client_id: str | None = None
    schedule_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    provider: str | None = None
    external_id: str | None = None
    link_kind: str | None = None
    link_id: str | None = None
    due_from: date | None = None
    due_to: date | None = None
    q: str | None = None


def payment_select(visibility: Visibility, f: PaymentFilters) -> Select[Any]:
    return where_all(
        payments.visible(visibility),
        one_of(Payment.status, f.statuses),
        eq(Payment.direction, f.direction),
        eq(Payment.currency, f.currency),
        eq(Payment.policy_id, f.policy_id),
        eq(Payment.client_id, f.client_id),
        eq(Payment.schedule_id, f.schedule_id),
        eq(Payment.owner_id, f.owner_id),
        eq(Payment.provider, f.provider),
        eq(Payment.external_id, f.external_id),
        eq(Payment.link_kind, f.link_kind),
        eq(Payment.link_id, f.link_id),
        at_least(Payment.due_date, f.due_from),
        at_most(Payment.due_date, f.due_to),
        contains_text(f.q, Payment.reference, Payment.payer, Payment.payee),
    )


async def list_payments(
    session: AsyncSession, visibility: Visibility, f: PaymentFilters, sort: str, page: PageParams
) -> tuple[list[Payment], str | None]:
    return await payments.page(session, payment_select(visibility, f), page, sort=sort)


async def by_external_id(session: AsyncSession, provider: str, external_id: str) -> Payment | None:
    stmt = select(Payment).where(Payment.provider == provider, Payment.external_id == external_id)
    row: Payment | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return row


async def allocation_by_external_id(
    session: AsyncSession, provider: str, external_id: str
) -> Allocation | None:
    stmt = select(Allocation).where(
        Allocation.provider == provider, Allocation.external_id == external_id
    )
    row: Allocation | None = (await session.execute(stmt)).scalar_one_or_none()
    return row


def _status_after(new_paid: Any, new_refunded: Any) -> Any:
    """The status a payment has after money moved (written in the same UPDATE)."""
    net = new_paid - new_refunded
    return case(
        (Payment.status == "cancelled", Payment.status),
        ((net >= Payment.amount_minor) & (Payment.amount_minor > 0), literal("paid")),
        ((new_refunded > 0) & (net == 0), literal("refunded")),
        (new_refunded > 0, literal("partially_refunded")),
        (net > 0, literal("partially_paid")),
        (
            Payment.status.in_(("paid", "partially_paid", "refunded", "partially_refunded")),  # type: ignore[attr-defined]
            literal("due"),
        ),
        else_=Payment.status,
    )


async def move_money(
    session: AsyncSession, payment_id: uuid.UUID, kind: str, amount: int, at: datetime
) -> bool:
    """Add ``amount`` received (``payment``), paid back (``refund``) or wrongly received
    (``reversal``); ``False`` when that would over-pay, over-refund, take back more than
    is there or touch a cancelled payment (nothing is written then)."""
    if kind == "payment":
        new_paid: Any = Payment.paid_minor + amount
        new_refunded: Any = Payment.refunded_minor
        guard = (new_paid - Payment.refunded_minor) <= Payment.amount_minor
        values: dict[str, Any] = {"paid_minor": new_paid, "paid_at": at}
    elif kind == "reversal":  # a wrong match undone: the receipt never was
        new_paid = Payment.paid_minor - amount
        new_refunded = Payment.refunded_minor
        guard = (new_paid - Payment.refunded_minor) >= 0
        values = {"paid_minor": new_paid}
    else:
        new_paid = Payment.paid_minor
        new_refunded = Payment.refunded_minor + amount
        guard = new_refunded <= Payment.paid_minor
        values = {"refunded_minor": new_refunded}
    stmt = (
        update(Payment)
        .where(Payment.id == payment_id, Payment.status != "cancelled", guard)
        .values(
            **values,
            status=_status_after(new_paid, new_refunded),
            version=Payment.version + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    result: Any = await session.execute(stmt)
    return bool(result.rowcount == 1)


async def allocations_of(session: AsyncSession, payment_id: uuid.UUID) -> Sequence[Allocation]:
    stmt = (
        select(Allocation)
        .where(Allocation.payment_id == payment_id)
        .order_by(Allocation.created_at, Allocation.id)
    )
    return list((await session.execute(stmt)).scalars())


async def commission_booked(session: AsyncSession, payment_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.sum(Commission.amount_minor), 0)).where(
        Commission.payment_id == payment_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def balances(
    session: AsyncSession,
    visibility: Visibility,
    *,
    client_id: str | None,
    policy_id: str | None,
) -> list[tuple[str, int, int, int, int]]:
    """Per currency: (currency, due, paid net, overdue, refunded) of incoming payments."""
    net = Payment.paid_minor - Payment.refunded_minor
    outstanding = Payment.amount_minor - net
    is_open = Payment.status != "cancelled"
    stmt = (
        where_all(
            select(
                Payment.currency,
                func.coalesce(func.sum(case((is_open, outstanding), else_=0)), 0),
                func.coalesce(func.sum(net), 0),
                func.coalesce(
                    func.sum(case((Payment.status == "overdue", outstanding), else_=0)), 0
                ),
                func.coalesce(func.sum(Payment.refunded_minor), 0),
            ).where(visibility.where(Payment.owner_id), Payment.direction == "incoming"),
            eq(Payment.client_id, client_id),
            eq(Payment.policy_id, policy_id),
        )
        .group_by(Payment.currency)
        .order_by(Payment.currency)
    )
    return [(c, int(d), int(p), int(o), int(r)) for c, d, p, o, r in await session.execute(stmt)]
