"""`/api/v1/payments/payments`: CRUD, cancel, allocations and refunds, balances, the CSV export."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    ListQuery,
    Page,
    PageDep,
    SessionDep,
    created,
    from_minor,
    list_query,
    page_response,
    present,
    query_filters,
    record_routes,
    while_allowed,
)
from crm2_payments.models import Schedule
from crm2_payments.repository import payments as repo
from crm2_payments.routes.deps import (
    PERMISSIONS,
    MoneyKey,
    PaymentsExport,
    PaymentsRead,
    PaymentsWrite,
)
from crm2_payments.schemas.payments import (
    AllocationCreate,
    AllocationPublic,
    Balance,
    Balances,
    MoneyMoved,
    PaymentCancel,
    PaymentCreate,
    PaymentPublic,
    PaymentUpdate,
    RecordId,
    SchedulePublic,
)
from crm2_payments.service import export as export_service
from crm2_payments.service import payments as service
from crm2_payments.service.schedules import schedule_public
from crm2_payments.visibility import RULES

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])
SortDep = Annotated[str, Depends(repo.PAYMENT_SORTS.dependency)]


payment_filters = query_filters(repo.PaymentFilters)
FiltersDep = Annotated[repo.PaymentFilters, Depends(payment_filters)]  # the export's
payment_query = list_query(repo.PaymentFilters, repo.PAYMENT_SORTS)
PaymentListQuery = Annotated[ListQuery[repo.PaymentFilters], Depends(payment_query)]


@router.get("/payments", response_model=Page[PaymentPublic])
async def list_payments(
    principal: PaymentsRead, session: SessionDep, query: PaymentListQuery
) -> Response:
    """Payments the caller may see (their own, or all with payments:all_records)."""
    visibility = service.PAYMENTS.visibility(principal, session)
    rows, cursor = await repo.list_payments(
        session, visibility, query.filters, query.sort, query.page
    )
    return page_response(PaymentPublic, [service.public_values(p) for p in rows], cursor)


@router.post(
    "/payments",
    response_model=PaymentPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "this provider's external_id exists: the existing payment"}},
)
async def create_payment(
    body: PaymentCreate,
    key: MoneyKey,
    principal: PaymentsWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> PaymentPublic:
    """Record a payment (Idempotency-Key required); an external_id seen before answers 200."""
    payment, is_new = await service.create_payment(session, context, principal, body)
    if not is_new:
        response.status_code = status.HTTP_200_OK
        return present(response, service.public(payment))
    return created(response, f"/api/v1/payments/payments/{payment.id}", service.public(payment))


@router.get("/payments/export.csv", response_class=StreamingResponse)
async def export_payments(
    principal: PaymentsExport, context: ContextDep, filters: FiltersDep, sort: SortDep
) -> StreamingResponse:
    """The payment list as CSV (same filters and visibility as the list), streamed; its column
    set is ``X-Export-Schema: payments/1`` (README)."""
    visibility = RULES.visibility(principal, context)

    def guard(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
        return while_allowed(chunks, context, principal, "payments:export")

    return export_service.export(context.session_factory, visibility, filters, sort, guard)


@router.get("/balances", response_model=Balances)
async def balances(principal: PaymentsRead, session: SessionDep, filters: FiltersDep) -> Balances:
    """The incoming payments the list shows with the same filters (a client's, a policy's,
    a period's, or all visible ones), summed per currency."""
    visibility = service.PAYMENTS.visibility(principal, session)
    rows = await repo.balances(session, visibility, filters)
    # Decimals, not text: a sum may have more digits than a request's Amount may carry
    lines = [
        Balance(
            currency=c,
            due=from_minor(d, c),
            paid=from_minor(p, c),
            overdue=from_minor(o, c),
            refunded=from_minor(r, c),
        )
        for c, d, p, o, r in rows
    ]
    return Balances(client_id=filters.client_id, policy_id=filters.policy_id, balances=lines)


@router.get("/schedules", response_model=Page[SchedulePublic])
async def list_schedules(
    principal: PaymentsRead,
    session: SessionDep,
    page: PageDep,
    policy_id: RecordId | None = None,
) -> Response:
    """Premium schedules (built from deals' policy events) the caller may see."""
    stmt = repo.schedules.visible(service.PAYMENTS.visibility(principal, session))
    if policy_id is not None:
        stmt = stmt.where(col(Schedule.policy_id) == policy_id)
    rows, cursor = await repo.schedules.page(session, stmt, page)
    return page_response(SchedulePublic, [schedule_public(s) for s in rows], cursor)


@router.get("/schedules/{schedule_id}", response_model=SchedulePublic)
async def get_schedule(
    schedule_id: uuid.UUID, principal: PaymentsRead, session: SessionDep, response: Response
) -> SchedulePublic:
    """One schedule; its instalments are ``GET /payments?schedule_id=…``."""
    visibility = service.PAYMENTS.visibility(principal, session)
    row = await repo.schedules.get_or_404(session, visibility, schedule_id)
    return present(response, schedule_public(row))


record_routes(
    router, "/payments/{payment_id}", service.public, response_model=PaymentPublic,
    permissions=PERMISSIONS, get=service.get_payment,
    update=(PaymentUpdate, service.update_payment),
    docs=("One payment; its ETag is what a PATCH or cancel sends as If-Match.",
          "Change a payment (If-Match required); the amount never below what was paid.", ""),
)  # fmt: skip


@router.post("/payments/{payment_id}/cancel", response_model=PaymentPublic)
async def cancel_payment(
    payment_id: uuid.UUID,
    if_match: IfMatchDep,
    principal: PaymentsWrite,
    session: SessionDep,
    response: Response,
    body: PaymentCancel | None = None,
) -> PaymentPublic:
    """Cancel a payment with no money on it (If-Match required; 409 otherwise: refund first)."""
    payment = await service.get_payment(session, principal, payment_id)
    payment = await service.cancel_payment(
        session, principal, payment, if_match, body or PaymentCancel()
    )
    return present(response, service.public(payment))


@router.get("/payments/{payment_id}/allocations", response_model=list[AllocationPublic])
async def list_allocations(
    payment_id: uuid.UUID, principal: PaymentsRead, session: SessionDep
) -> list[AllocationPublic]:
    """The payment's ledger: money received and paid back, oldest first."""
    payment = await service.get_payment(session, principal, payment_id)
    return [service.allocation_public(a) for a in await repo.allocations_of(session, payment.id)]


async def _move(
    kind: str,
    payment_id: uuid.UUID,
    body: AllocationCreate,
    principal: PaymentsWrite,
    session: AsyncSession,
    response: Response,
) -> MoneyMoved:
    allocation, payment, is_new = await service.record(session, principal, payment_id, kind, body)
    result = MoneyMoved(
        allocation=service.allocation_public(allocation), payment=service.public(payment)
    )
    if is_new:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/api/v1/payments/payments/{payment.id}/allocations"
    response.headers["ETag"] = f'"v{payment.version}"'
    return result


@router.post(
    "/payments/{payment_id}/allocations",
    response_model=MoneyMoved,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "this provider's external_id exists: nothing moved"}},
)
async def allocate(
    payment_id: uuid.UUID,
    body: AllocationCreate,
    key: MoneyKey,
    principal: PaymentsWrite,
    session: SessionDep,
    response: Response,
) -> MoneyMoved:
    """Money received against the payment (Idempotency-Key required); never more than is due
    (409 payments-overpayment)."""
    response.status_code = status.HTTP_200_OK
    return await _move("payment", payment_id, body, principal, session, response)


@router.post(
    "/payments/{payment_id}/refunds",
    response_model=MoneyMoved,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "this provider's external_id exists: nothing moved"}},
)
async def refund(
    payment_id: uuid.UUID,
    body: AllocationCreate,
    key: MoneyKey,
    principal: PaymentsWrite,
    session: SessionDep,
    response: Response,
) -> MoneyMoved:
    """Money paid back (Idempotency-Key required); never more than was paid (409
    payments-over-refund). The premium's commission is reversed in proportion."""
    response.status_code = status.HTTP_200_OK
    return await _move("refund", payment_id, body, principal, session, response)
