"""Commission rules: basis points of the premium paid, or a fixed amount once it is paid in
full (``payments:admin``). A rule is one kind or the other for good: a PATCH changes its
product, its basis points (a basis-points rule's only) and whether it is active."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version
from crm2_payments.errors import InvalidRule
from crm2_payments.models import CommissionRule
from crm2_payments.repository.rules import rules
from crm2_payments.schemas.admin import CommissionRuleCreate, CommissionRuleUpdate
from crm2_payments.service.money import minor
from crm2_payments.visibility import RULES


async def create_rule(session: AsyncSession, body: CommissionRuleCreate) -> CommissionRule:
    """422 ``payments-invalid-rule`` unless exactly one of basis points or a fixed amount
    (with its currency) is given."""
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
    return row


async def update_rule(
    session: AsyncSession, rule_id: uuid.UUID, if_match: str, body: CommissionRuleUpdate
) -> CommissionRule:
    """Commissions booked before stay as they are. Basis points sent for a fixed-amount
    rule are a 422 (``payments-invalid-rule``), nothing written: a 200 that ignored them
    would tell the caller the rule now pays them."""
    row = await rules.get_or_404(session, RULES.visibility(None), rule_id)
    version = check_version(if_match, row.version)
    values = body.model_dump(exclude_unset=True)
    if "basis_points" in values and row.basis_points is None:
        raise InvalidRule(
            "this rule pays a fixed amount: it has no basis_points (create a rule with them)"
        )
    await rules.update(session, row, values, expected_version=version)
    return row
