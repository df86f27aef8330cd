"""Commissions: a premium's earned commission, booked as a ledger of signed entries.

When money moves on an incoming payment with an insurer, the best rule (same
insurer and product, else the insurer's rule for every product; the newest
wins) says what the premium has earned at its current net paid amount
(``money.commission_due``); the entry booked is the difference to what is
booked already. A change of the premium's amount books the same way (an entry
without an allocation: a fixed commission is earned once the premium is paid in
full, whatever made it so). Without an active rule nothing more is booked
(deactivating a rule freezes what it earned). So a refund books a negative entry (a
reversal) and the sum of a premium's entries is always exactly what its rule says.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_payments.models import Allocation, Commission, CommissionRule, Payment
from crm2_payments.repository import payments as repo
from crm2_payments.service.money import commission_due


async def rule_for(session: AsyncSession, payment: Payment) -> CommissionRule | None:
    if not payment.insurer:
        return None
    stmt = (
        select(CommissionRule)
        .where(
            col(CommissionRule.insurer) == payment.insurer,
            col(CommissionRule.active).is_(True),
            or_(
                col(CommissionRule.product) == payment.product,
                col(CommissionRule.product).is_(None),
            ),
            or_(
                col(CommissionRule.currency).is_(None),
                col(CommissionRule.currency) == payment.currency,
            ),
        )
        .order_by(
            col(CommissionRule.product).is_(None),
            col(CommissionRule.created_at).desc(),
            col(CommissionRule.id),
        )
        .limit(1)
    )
    rule: CommissionRule | None = (await session.execute(stmt)).scalars().first()
    return rule


async def book(
    session: AsyncSession, payment: Payment, allocation: Allocation | None
) -> Commission | None:
    """The commission entry of ``allocation``, or of a change of the payment's amount
    (``allocation`` ``None``: a fixed commission is earned once the premium is paid in
    full, and a new amount can make it so, or no longer so); ``None`` when nothing
    changes."""
    if payment.direction != "incoming":
        return None
    rule = await rule_for(session, payment)
    if rule is None:
        return None  # no active rule: what is booked stays as it is
    net = payment.paid_minor - payment.refunded_minor
    due = commission_due(net, payment.amount_minor, rule.basis_points, rule.fixed_minor)
    delta = due - await repo.commission_booked(session, payment.id)
    if delta == 0:
        return None
    entry = Commission(
        payment_id=payment.id,
        allocation_id=allocation.id if allocation is not None else None,
        rule_id=rule.id,
        amount_minor=delta,
        currency=payment.currency,
        owner_id=payment.owner_id,
    )
    session.add(entry)
    await session.flush()
    return entry
