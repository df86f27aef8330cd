"""Commission rules (`payments:admin`) and the commission ledger (visible like payments)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response, status
from sqlalchemy import select
from sqlmodel import col

from crm2_core.api import (
    APIRouter,
    IfMatchDep,
    Page,
    PageDep,
    Repository,
    SessionDep,
    Sorts,
    check_version,
    created,
    from_minor,
    page_response,
    present,
)
from crm2_payments.errors import InvalidRule, RuleNotFound
from crm2_payments.models import Commission, CommissionRule
from crm2_payments.routes.deps import PaymentsAdmin, PaymentsRead
from crm2_payments.schemas.admin import (
    CommissionPublic,
    CommissionRuleCreate,
    CommissionRulePublic,
    CommissionRuleUpdate,
)
from crm2_payments.service.money import minor
from crm2_payments.visibility import RULES

router = APIRouter(prefix="/api/v1/payments", tags=["payments commissions"])
rules = Repository(
    CommissionRule,
    RuleNotFound,
    sorts=Sorts(
        {"created_at": col(CommissionRule.created_at)},
        id_column=col(CommissionRule.id),
        default="-created_at",
    ),
    noun="commission rule",
)
commissions = Repository(
    Commission,
    RuleNotFound,
    owner=col(Commission.owner_id),
    sorts=Sorts(
        {"created_at": col(Commission.created_at)},
        id_column=col(Commission.id),
        default="-created_at",
    ),
    noun="commission",
)


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
    if (body.basis_points is None) == (body.fixed_amount is None):
        raise InvalidRule("give either basis_points or fixed_amount (with its currency)")
    if body.fixed_amount is not None and body.currency is None:
        raise InvalidRule("fixed_amount needs its currency")
    fixed = (
        minor(body.fixed_amount, body.currency)  # zero or less: 422
        if body.fixed_amount is not None and body.currency is not None
        else None
    )
    row = CommissionRule(
        insurer=body.insurer,
        product=body.product,
        basis_points=body.basis_points,
        fixed_minor=fixed,
        currency=body.currency if fixed is not None else None,
        active=body.active,
    )
    await rules.add(session, row)
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
    """Change a rule (If-Match required); commissions booked before stay as they are."""
    row = await rules.get_or_404(session, RULES.visibility(None), rule_id)
    version = check_version(if_match, row.version)
    values = body.model_dump(exclude_unset=True)
    if "basis_points" in values and row.basis_points is None:
        values.pop("basis_points")
    await rules.update(session, row, values, expected_version=version)
    return present(response, rule_public(row))


@router.get("/commissions", response_model=Page[CommissionPublic])
async def list_commissions(
    principal: PaymentsRead,
    session: SessionDep,
    page: PageDep,
    payment_id: uuid.UUID | None = None,
) -> Response:
    """The commission ledger (earned +, reversed -) of the payments the caller may see."""
    stmt = commissions.visible(RULES.visibility(principal))
    if payment_id is not None:
        stmt = stmt.where(col(Commission.payment_id) == payment_id)
    rows, cursor = await commissions.page(session, stmt, page)
    return page_response(CommissionPublic, [commission_public(c) for c in rows], cursor)
