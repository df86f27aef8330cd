"""``GET /api/v1/payments/payments/export.csv``: the list as CSV through the kit, versioned.

``X-Export-Schema: payments/1`` names the column set (README); cells are
formula-safe (the kit's ``cell``), money is the decimal string of its currency.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.api import CsvColumns, PageParams, Visibility, csv_response, export_pages
from crm2_payments.models import Payment
from crm2_payments.repository import payments as repo
from crm2_payments.service.money import text

SCHEMA = "payments/1"
COLUMNS = CsvColumns(
    (
        "id",
        "direction",
        "status",
        "amount",
        "paid",
        "refunded",
        "outstanding",
        "currency",
        "due_date",
        "paid_at",
        "method",
        "payer",
        "payee",
        "reference",
        "policy_id",
        "client_id",
        "insurer",
        "product",
        "schedule_id",
        "instalment",
        "provider",
        "external_id",
        "owner_id",
        "created_at",
        "updated_at",
    ),
    version=1,
)


def row(p: Payment) -> list[Any]:
    net = p.paid_minor - p.refunded_minor
    outstanding = 0 if p.status == "cancelled" else p.amount_minor - net
    c = p.currency
    return [
        p.id, p.direction, p.status, text(p.amount_minor, c), text(net, c),
        text(p.refunded_minor, c), text(outstanding, c), c, p.due_date, p.paid_at, p.method,
        p.payer, p.payee, p.reference, p.policy_id, p.client_id, p.insurer, p.product,
        p.schedule_id, p.instalment, p.provider, p.external_id, p.owner_id, p.created_at,
        p.updated_at,
    ]  # fmt: skip


def export(
    session_factory: async_sessionmaker[AsyncSession],
    visibility: Visibility,
    filters: repo.PaymentFilters,
    sort: str,
) -> StreamingResponse:
    async def fetch(session: AsyncSession, page: PageParams) -> tuple[list[Payment], str | None]:
        return await repo.list_payments(session, visibility, filters, sort, page)

    async def rows(session: AsyncSession, items: list[Payment]) -> list[list[Any]]:
        return [row(p) for p in items]

    response = csv_response(
        export_pages(session_factory, COLUMNS, fetch, rows), "payments", COLUMNS
    )
    response.headers["X-Export-Schema"] = SCHEMA
    return response
