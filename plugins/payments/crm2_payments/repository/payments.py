"""Every query on payments and their ledger, with the visibility rule applied in SQL.

Money moves only through ``move_money``: one conditional UPDATE that checks the
invariant (never over-pay, never over-refund) and sets the status in the same
statement, so concurrent allocations on PostgreSQL and SQLite cannot break it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from sqlalchemy import bindparam, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    Currency,
    Filter,
    Filtered,
    IsoDate,
    LinkIdFilter,
    LinkKindFilter,
    PageParams,
    Repository,
    Sorts,
    Visibility,
    at_least,
    at_most,
    contains_text,
    eq,
    one_of,
    paginate,
    utcnow,
    where_all,
)
from crm2_payments.errors import PaymentNotFound, ScheduleNotFound
from crm2_payments.models import Allocation, Commission, Payment, Schedule
from crm2_payments.schemas.payments import Direction, Provider, RecordId, Status

PAYMENT_SORTS = Sorts(
    {
        "due_date": col(Payment.due_date),
        "created_at": col(Payment.created_at),
        "updated_at": col(Payment.updated_at),
        "amount": col(Payment.amount_minor),
    },
    id_column=col(Payment.id),
    default="-created_at",
)
SCHEDULE_SORTS = Sorts(
    {"created_at": col(Schedule.created_at)}, id_column=col(Schedule.id), default="-created_at"
)

payments = Repository(Payment, PaymentNotFound, owner=col(Payment.owner_id), sorts=PAYMENT_SORTS)
schedules = Repository(
    Schedule, ScheduleNotFound, owner=col(Schedule.owner_id), sorts=SCHEDULE_SORTS, noun="schedule"
)


@dataclass(frozen=True)
class PaymentFilters:
    """The list's (and export's) query parameters, declared once (``query_filters``)."""

    statuses: Annotated[tuple[Status, ...], Filter("repeat for several", name="status")] = ()
    direction: Direction | None = None
    currency: Currency | None = None
    policy_id: RecordId | None = None
    client_id: RecordId | None = None
    schedule_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    provider: Provider | None = None
    external_id: Annotated[str | None, Filter(min_length=1, max_length=200)] = None
    link_kind: LinkKindFilter = None
    link_id: LinkIdFilter = None
    due_from: IsoDate | None = None
    due_to: IsoDate | None = None
    q: Annotated[str | None, Filter("in reference, payer, payee", max_length=200)] = None


def payment_conditions(f: PaymentFilters) -> tuple[Any, ...]:
    """``f`` as conditions (``None`` for a filter not given): the list's, the export's and
    the balances', so each shows the same payments."""
    return (
        one_of(col(Payment.status), f.statuses),
        eq(col(Payment.direction), f.direction),
        eq(col(Payment.currency), f.currency),
        eq(col(Payment.policy_id), f.policy_id),
        eq(col(Payment.client_id), f.client_id),
        eq(col(Payment.schedule_id), f.schedule_id),
        eq(col(Payment.owner_id), f.owner_id),
        eq(col(Payment.provider), f.provider),
        eq(col(Payment.external_id), f.external_id),
        eq(col(Payment.link_kind), f.link_kind),
        eq(col(Payment.link_id), f.link_id),
        at_least(col(Payment.due_date), f.due_from),
        at_most(col(Payment.due_date), f.due_to),
        contains_text(f.q, col(Payment.reference), col(Payment.payer), col(Payment.payee)),
    )


def payment_select(visibility: Visibility, f: PaymentFilters) -> Filtered:
    """The payments ``visibility`` may see that pass ``f``, as the table's columns."""
    return payments.filtered(visibility, *payment_conditions(f))


async def list_payments(
    session: AsyncSession, visibility: Visibility, f: PaymentFilters, sort: str, page: PageParams
) -> tuple[list[Any], str | None]:
    """A page of payments as plain rows (read by attribute: only shown)."""
    return await payments.page_rows(session, payment_select(visibility, f), page, sort=sort)


# What the CSV export reads of a payment, in ``export.COLUMNS``' order (money as
# minor units: the export turns them into text). Every sort column is here, so the
# last row of a page gives the cursor.
EXPORT_COLUMNS = (
    col(Payment.id),
    col(Payment.direction),
    col(Payment.status),
    col(Payment.amount_minor),
    col(Payment.paid_minor),
    col(Payment.refunded_minor),
    col(Payment.currency),
    col(Payment.due_date),
    col(Payment.paid_at),
    col(Payment.method),
    col(Payment.payer),
    col(Payment.payee),
    col(Payment.reference),
    col(Payment.policy_id),
    col(Payment.client_id),
    col(Payment.insurer),
    col(Payment.product),
    col(Payment.schedule_id),
    col(Payment.instalment),
    col(Payment.provider),
    col(Payment.external_id),
    col(Payment.owner_id),
    col(Payment.created_at),
    col(Payment.updated_at),
)


async def list_payment_rows(
    session: AsyncSession, visibility: Visibility, f: PaymentFilters, sort: str, page: PageParams
) -> tuple[list[Any], str | None]:
    """The list's page as plain rows of ``EXPORT_COLUMNS``: no ORM objects, for the export."""
    stmt = payment_select(visibility, f).statement().with_only_columns(*EXPORT_COLUMNS)
    return await paginate(session, stmt, PAYMENT_SORTS.keys(sort), page, scalars=False)


async def by_external_id(session: AsyncSession, provider: str, external_id: str) -> Payment | None:
    stmt = select(Payment).where(
        col(Payment.provider) == provider, col(Payment.external_id) == external_id
    )
    row: Payment | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return row


async def allocation_by_external_id(
    session: AsyncSession, provider: str, kind: str, external_id: str
) -> Allocation | None:
    """The ``kind`` of movement the provider booked under ``external_id`` (a refund and
    the receipt it pays back may share the id)."""
    stmt = select(Allocation).where(
        col(Allocation.provider) == provider,
        col(Allocation.kind) == kind,
        col(Allocation.external_id) == external_id,
    )
    row: Allocation | None = (await session.execute(stmt)).scalar_one_or_none()
    return row


def _status_after(new_paid: Any, new_refunded: Any) -> Any:
    """The status a payment has after money moved (written in the same UPDATE)."""
    net = new_paid - new_refunded
    return case(
        (col(Payment.status) == "cancelled", col(Payment.status)),
        ((net >= col(Payment.amount_minor)) & (col(Payment.amount_minor) > 0), literal("paid")),
        ((new_refunded > 0) & (net == 0), literal("refunded")),
        (new_refunded > 0, literal("partially_refunded")),
        # still owed past its due date: a part payment (or a receipt taken back) on a
        # payment the overdue job marked leaves it overdue (the job marks a payment once)
        ((net > 0) & col(Payment.overdue_at).is_not(None), literal("overdue")),
        (net > 0, literal("partially_paid")),
        (
            # no money on it any more (a receipt taken back): owed again, and overdue when
            # the overdue job marked it so before (it marks a payment once)
            col(Payment.status).in_(("paid", "partially_paid", "refunded", "partially_refunded")),
            case((col(Payment.overdue_at).is_not(None), literal("overdue")), else_=literal("due")),
        ),
        else_=col(Payment.status),
    )


async def move_money(
    session: AsyncSession, payment_id: uuid.UUID, kind: str, amount: int, at: datetime
) -> bool:
    """Add ``amount`` received (``payment``), paid back (``refund``) or wrongly received
    (``reversal``); ``False`` when that would over-pay, over-refund, take back more than
    is there or touch a cancelled payment (nothing is written then)."""
    values = {"move_id": payment_id, "move_amount": amount, "move_at": at, "move_now": utcnow()}
    result: Any = await session.execute(_move_statement(kind), values)
    return result.scalars().first() is not None


@lru_cache(maxsize=4)
def _move_statement(kind: str) -> Any:
    """The guarded UPDATE of one ``kind`` of move, built once (its expression tree, with
    the status ``CASE``, cost more to build than to run); the values are parameters."""
    table = Payment.__table__  # type: ignore[attr-defined]
    amount = bindparam("move_amount", type_=table.c.paid_minor.type)
    paid, refunded = col(Payment.paid_minor), col(Payment.refunded_minor)
    if kind == "payment":
        new_paid: Any = paid + amount
        new_refunded: Any = refunded
        guard = (new_paid - refunded) <= col(Payment.amount_minor)
        values: dict[str, Any] = {
            "paid_minor": new_paid,
            "paid_at": bindparam("move_at", type_=table.c.paid_at.type),
        }
    elif kind == "reversal":  # a wrong match undone: the receipt never was
        new_paid = paid - amount
        new_refunded = refunded
        guard = (new_paid - refunded) >= 0
        values = {"paid_minor": new_paid}
    else:
        new_paid = paid
        new_refunded = refunded + amount
        guard = new_refunded <= paid
        values = {"refunded_minor": new_refunded}
    return (
        update(Payment)
        .where(
            col(Payment.id) == bindparam("move_id", type_=table.c.id.type),
            col(Payment.status) != "cancelled",
            guard,
        )
        .values(
            **values,
            status=_status_after(new_paid, new_refunded),
            version=col(Payment.version) + 1,
            updated_at=bindparam("move_now", type_=table.c.updated_at.type),
        )
        # the written row comes back with the UPDATE and refreshes the session's object:
        # no SELECT after it
        .returning(Payment)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


async def allocations_of(session: AsyncSession, payment_id: uuid.UUID) -> Sequence[Allocation]:
    stmt = (
        select(Allocation)
        .where(col(Allocation.payment_id) == payment_id)
        .order_by(col(Allocation.created_at), col(Allocation.id))
    )
    return list((await session.execute(stmt)).scalars())


async def commission_booked(session: AsyncSession, payment_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.sum(col(Commission.amount_minor)), 0)).where(
        col(Commission.payment_id) == payment_id
    )
    return int((await session.execute(stmt)).scalar_one())


# SQLite's SUM raises "integer overflow" past 2^63 (10,000 payments of the largest amount):
# each sum is taken as the sums of the quotients and of the remainders by 2^32, which stay
# far inside 64 bits, and put together in Python. Integer division truncates and the
# remainder keeps the dividend's sign on both databases, so ``q * 2^32 + r`` is exact.
_SPLIT = 2**32


def _split_sum(value: Any) -> tuple[Any, Any]:
    return (
        func.coalesce(func.sum(value // _SPLIT), 0),
        func.coalesce(func.sum(value % _SPLIT), 0),
    )


async def balances(
    session: AsyncSession,
    visibility: Visibility,
    f: PaymentFilters,
) -> list[tuple[str, int, int, int, int]]:
    """Per currency: (currency, due, paid net, overdue, refunded) of the incoming payments
    the list shows with the filters ``f``."""
    net = col(Payment.paid_minor) - col(Payment.refunded_minor)
    outstanding = col(Payment.amount_minor) - net
    is_open = col(Payment.status) != "cancelled"
    sums = (
        case((is_open, outstanding), else_=0),
        net,
        case((col(Payment.status) == "overdue", outstanding), else_=0),
        col(Payment.refunded_minor),
    )
    stmt = (
        where_all(
            select(
                col(Payment.currency), *(part for value in sums for part in _split_sum(value))
            ).where(visibility.where(col(Payment.owner_id)), col(Payment.direction) == "incoming"),
            *payment_conditions(f),
        )
        .group_by(col(Payment.currency))
        .order_by(col(Payment.currency))
    )
    rows = []
    for currency, *parts in await session.execute(stmt):
        d, p, o, r = (
            int(q) * _SPLIT + int(m) for q, m in zip(parts[::2], parts[1::2], strict=True)
        )
        rows.append((currency, d, p, o, r))
    return rows
