"""``crm2 seed demo``: schedules, payments, commissions, a reconciliation for the demo policies.

Runs after deals' seed when deals is enabled (plugins seed in dependency order,
ties by name) and reads deals' policies by table name: payments imports nothing
of deals. Every active or expired demo policy gets its schedule (as its
activation event would have built it); instalments due more than a month ago
are paid, one is paid in part; each insurer gets a 12.5 % commission rule; one
bank statement pays two open instalments and holds a line nobody knows. Without
deals, each agent gets a few payments entered by hand. Seeding twice adds
nothing (schedules are one per policy, the rest is keyed by external ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sqlalchemy import column, func, select, table
from sqlmodel import col

from crm2_core.api import from_minor, utcnow
from crm2_payments.models import CommissionRule, Payment, Statement
from crm2_payments.repository import payments as repo
from crm2_payments.schemas.payments import AllocationCreate
from crm2_payments.service import payments as payments_service
from crm2_payments.service import reconciliation
from crm2_payments.service.money import text
from crm2_payments.service.schedules import create_schedule, remember_policy
from crm2_payments.service.statements import parse

_user = table("auth_user", column("id"), column("email"), column("is_active"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))
_policy = table(
    "deals_policy",
    column("id"), column("number"), column("insurer"), column("client_id"), column("premium_minor"),
    column("currency"), column("payment_frequency"), column("start_date"), column("status"),
    column("owner_id"), column("product"),
)  # fmt: skip
DEMO_STATEMENT = "demo-statement.csv"


def seed(name: str, context: Any) -> Awaitable[Any] | None:
    """``demo``, or ``load`` sized by CRM2_SEED_PAYMENTS (as tasks reads CRM2_SEED_TASKS)."""
    if name == "demo":
        return _demo(context)
    if name == "load":
        from crm2_core.api import env_count
        from crm2_payments.seed_load import seed_load

        count = env_count("CRM2_SEED_PAYMENTS", 0)
        return seed_load(context, payments=count) if count > 0 else None
    return None


async def _demo(context: Any) -> None:
    async with context.session_factory() as session:
        if context.is_enabled("deals"):
            await _schedules(session)
        else:
            await _manual(session)
        await session.commit()
    await _statement(context)


async def _schedules(session: Any) -> None:
    stmt = (
        select(_policy)
        .where(_policy.c.status.in_(("active", "expired")))
        .order_by(_policy.c.number)
    )
    policies = list((await session.execute(stmt)).mappings())
    today = utcnow().date()
    insurers = sorted({str(p["insurer"]) for p in policies})
    known = set((await session.execute(select(col(CommissionRule.insurer)))).scalars())
    for insurer in insurers:
        if insurer not in known:
            session.add(CommissionRule(insurer=insurer, basis_points=1250))
    await session.flush()
    for index, p in enumerate(policies):
        policy_id = str(uuid.UUID(str(p["id"])))
        known_policy = {"insurer": p["insurer"], "product": p["product"], "number": p["number"]}
        await remember_policy(session, policy_id, known_policy)
        data = {
            "premium": text(int(p["premium_minor"]), str(p["currency"])),
            "currency": p["currency"],
            "payment_frequency": p["payment_frequency"],
            "start_date": str(p["start_date"]),
            "owner_id": str(p["owner_id"]),
            "client_id": str(p["client_id"]),
        }
        schedule = await create_schedule(session, policy_id, data, None)
        if schedule is None:
            continue
        rows = (await session.execute(
            select(Payment)
            .where(col(Payment.schedule_id) == schedule.id)
            .order_by(col(Payment.instalment))
        )).scalars().all()  # fmt: skip
        for payment in rows:
            assert payment.due_date is not None
            if payment.due_date > today - timedelta(days=30):
                continue
            share = payment.amount_minor // 2 if index % 7 == 3 else payment.amount_minor
            body = AllocationCreate(
                amount=from_minor(share, payment.currency),
                currency=payment.currency,
                method="bank_transfer",
                reference=payment.reference,
                provider="demo",
                external_id=f"demo-{payment.id}",
            )
            await payments_service.move(session, None, payment, "payment", body)


async def _manual(session: Any) -> None:
    stmt = (
        select(_user.c.id)
        .join(_user_role, _user_role.c.user_id == _user.c.id)
        .where(_user_role.c.role_name == "agent", _user.c.is_active.is_(True))
        .order_by(_user.c.email)
    )
    today = utcnow().date()
    for n, agent in enumerate((await session.execute(stmt)).scalars()):
        for i in range(3):
            external = f"demo-manual-{agent}-{i}"
            if await repo.by_external_id(session, "demo", external):
                continue
            payment = Payment(
                amount_minor=(n + 1) * 10_000 + i * 2_550, currency="EUR",
                due_date=today + timedelta(days=30 * (i - 1)), reference=f"DEMO-{n:02d}-{i}",
                payer="Demo client", provider="demo", external_id=external,
                owner_id=uuid.UUID(str(agent)),
            )  # fmt: skip
            await payments_service.add_payment(session, payment, None)


async def _statement(context: Any) -> None:
    async with context.session_factory() as session:
        done = (
            select(func.count())
            .select_from(Statement)
            .where(col(Statement.filename) == DEMO_STATEMENT)
        )
        if (await session.execute(done)).scalar_one() > 0:
            return
        stmt = (
            select(Payment)
            .where(
                col(Payment.status).in_(("planned", "due")), col(Payment.direction) == "incoming"
            )
            .order_by(col(Payment.due_date), col(Payment.id))
            .limit(2)
        )
        open_payments = list((await session.execute(stmt)).scalars())
        today = utcnow().date()
        lines = ["date;amount;currency;reference;counterparty"]
        for p in open_payments:
            amount = text(p.amount_minor, p.currency).replace(".", ",")
            lines.append(
                f"{today.isoformat()};{amount};{p.currency};{p.reference};{p.payer or 'Client'}"
            )
        lines.append(f"{today.isoformat()};99,99;EUR;UNKNOWN-REF;Somebody Else")
        parsed = parse(("\ufeff" + "\r\n".join(lines)).encode(), 100)
        await reconciliation.upload(session, context, None, DEMO_STATEMENT, parsed)
        await session.commit()
