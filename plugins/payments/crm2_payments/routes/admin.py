"""Commission rules and held schedules (`payments:admin`), and the commission ledger
(visible like payments)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response, status
from sqlalchemy import select
from sqlmodel import col

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    Page,
    PageDep,
    SessionDep,
    created,
    from_minor,
    page_response,
    present,
)
from crm2_payments.models import Commission, CommissionRule
from crm2_payments.repository import rules as rules_repo
from crm2_payments.routes.deps import PaymentsAdmin, PaymentsRead
from crm2_payments.schemas.admin import (
    CommissionPublic,
    CommissionRuleCreate,
    CommissionRulePublic,
    CommissionRuleUpdate,
    HeldSchedules,
)
from crm2_payments.service import rules as service
from crm2_payments.service import schedules as schedules_service
from crm2_payments.visibility import RULES

router = APIRouter(prefix="/api/v1/payments", tags=["payments commissions"])
rules, commissions = rules_repo.rules, rules_repo.commissions


def rule_public(r: CommissionRule) -> CommissionRulePublic:
    fixed = (
        from_minor(r.fixed_minor, r.currency) if r.fixed_minor is not None and r.currency else None
    )
    return CommissionRulePublic.model_validate(
        {**r.model_dump(exclude={"fixed_minor"}), "fixed_amount": fixed}
    )


def commission_public(c: Commission) -> CommissionPublic:
    return CommissionPublic.model_validate(
        {**c.model_dump(exclude={"amount_minor"}), "amount": from_minor(c.amount_minor, c.currency)}
    )


@router.get("/commission-rules", response_model=Page[CommissionRulePublic])
async def list_rules(
    principal: PaymentsAdmin,
    session: SessionDep,
    page: PageDep,
    insurer: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Commission rules, newest first."""
    stmt = select(CommissionRule)
    if insurer is not None:
        stmt = stmt.where(col(CommissionRule.insurer) == insurer)
    rows, cursor = await rules.page(session, stmt, page)
    return page_response(CommissionRulePublic, [rule_public(r) for r in rows], cursor)


@router.post(
    "/commission-rules", response_model=CommissionRulePublic, status_code=status.HTTP_201_CREATED
)
async def create_rule(
    body: CommissionRuleCreate, principal: PaymentsAdmin, session: SessionDep, response: Response
) -> CommissionRulePublic:
    """A rule: basis points of the premium paid, or a fixed amount once it is paid in full."""
    row = await service.create_rule(session, body)
    return created(response, f"/api/v1/payments/commission-rules/{row.id}", rule_public(row))


@router.get("/commission-rules/{rule_id}", response_model=CommissionRulePublic)
async def get_rule(
    rule_id: uuid.UUID, principal: PaymentsAdmin, session: SessionDep, response: Response
) -> CommissionRulePublic:
    """One rule; its ETag is what a PATCH sends as If-Match."""
    row = await rules.get_or_404(session, RULES.visibility(None), rule_id)
    return present(response, rule_public(row))


@router.patch("/commission-rules/{rule_id}", response_model=CommissionRulePublic)
async def update_rule(
    rule_id: uuid.UUID,
    body: CommissionRuleUpdate,
    if_match: IfMatchDep,
    principal: PaymentsAdmin,
    session: SessionDep,
    response: Response,
) -> CommissionRulePublic:
    """Change a rule (If-Match required); commissions booked before stay as they are. A
    fixed-amount rule takes no basis_points (422)."""
    row = await service.update_rule(session, rule_id, if_match, body)
    return present(response, rule_public(row))


@router.get("/commissions", response_model=Page[CommissionPublic])
async def list_commissions(
    principal: PaymentsRead,
    session: SessionDep,
    page: PageDep,
    payment_id: uuid.UUID | None = None,
) -> Response:
    """The commission ledger (earned +, reversed -) of the payments the caller may see."""
    stmt = commissions.visible(RULES.in_session(session, principal))
    if payment_id is not None:
        stmt = stmt.where(col(Commission.payment_id) == payment_id)
    rows, cursor = await commissions.page(session, stmt, page)
    return page_response(CommissionPublic, [commission_public(c) for c in rows], cursor)


@router.post("/schedules/held/build", response_model=HeldSchedules)
async def build_held_schedules(
    principal: PaymentsAdmin,
    session: SessionDep,
    context: ContextDep,
    after: Annotated[
        str | None, Query(max_length=64, description="next_after of the previous batch")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="policies in this batch")] = 100,
) -> HeldSchedules:
    """Build the schedules held because their policy's owner could not own payments, for
    those whose owner may now (their role gained payments:write without a hand-over), a
    batch of `limit` policies at a time: call again with `after=next_after` until
    `remaining` is 0. Idempotent: a second call builds nothing more."""
    batch = await schedules_service.build_held_schedules(session, context, after=after, limit=limit)
    return HeldSchedules(
        built=[schedules_service.schedule_public(s) for s in batch.built],
        held=batch.held,
        remaining=batch.remaining,
        next_after=batch.next_after,
    )
