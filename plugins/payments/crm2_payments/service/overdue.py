"""The daily overdue job: mark open payments past their due date, once each.

One conditional UPDATE per payment (``WHERE overdue_at IS NULL AND status IN
open``) claims it, so two processes, a late run or a second run the same day
mark it and emit ``payments.payment.overdue`` exactly once. Instalments whose
due date has come (but not passed the grace days) go from planned to due.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from crm2_core.api import publish, utcnow
from crm2_payments.events import PaymentOverdue
from crm2_payments.models import Payment
from crm2_payments.service.money import text
from crm2_payments.service.payments import identity

BATCH = 500
WAITING = ("planned", "due", "partially_paid")


async def mark_overdue(context: Any, today: date | None = None) -> dict[str, int]:
    today = today or utcnow().date()
    grace: int = context.plugin_settings("payments").grace_days
    limit = today - timedelta(days=grace)
    marked = 0
    async with context.session_factory() as session:
        due = await session.execute(
            update(Payment)
            .where(col(Payment.status) == "planned", col(Payment.due_date) <= today)
            .values(status="due", version=col(Payment.version) + 1, updated_at=utcnow())
        )
        await session.commit()
    became_due = int(getattr(due, "rowcount", 0) or 0)
    while True:
        async with context.session_factory() as session:
            stmt = (
                select(col(Payment.id))
                .where(
                    col(Payment.status).in_(WAITING),
                    col(Payment.overdue_at).is_(None),
                    col(Payment.due_date) < limit,
                )
                .order_by(col(Payment.due_date), col(Payment.id))
                .limit(BATCH)
            )
            ids = list((await session.execute(stmt)).scalars())
            if not ids:
                break
            now = utcnow()
            for payment_id in ids:
                claimed = await session.execute(
                    update(Payment)
                    .where(
                        col(Payment.id) == payment_id,
                        col(Payment.overdue_at).is_(None),
                        col(Payment.status).in_(WAITING),
                    )
                    .values(
                        status="overdue",
                        overdue_at=now,
                        version=col(Payment.version) + 1,
                        updated_at=now,
                    )
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    continue
                payment = await session.get(Payment, payment_id, populate_existing=True)
                assert payment is not None
                outstanding = payment.amount_minor - payment.paid_minor + payment.refunded_minor
                event = PaymentOverdue(
                    due_date=payment.due_date,
                    outstanding=text(outstanding, payment.currency),
                    **identity(payment),
                )
                publish(session, event, subject=payment.id)
                marked += 1
            await session.commit()
    return {"due": became_due, "overdue": marked}
