"""A payment given a new due date after it went overdue.

The overdue job marks a payment overdue once (``overdue_at``). A PATCH moving its due
date into the future (a payment plan agreed) left it ``overdue`` for good: counted in the
balances' ``overdue``, and never marked again when the new date passed.
"""

from __future__ import annotations

from datetime import timedelta

from crm2_payments.service.overdue import mark_overdue
from payments_kit import API, Payments

from crm2_core.api import utcnow


async def test_an_overdue_payment_given_a_later_due_date_is_no_longer_overdue(
    payments: Payments,
) -> None:
    today = utcnow().date()
    p = payments
    agent = await p.user("agent")
    late = await p.create(agent, amount="10.00", due_date=str(today - timedelta(days=30)))
    part = await p.create(agent, amount="10.00", due_date=str(today - timedelta(days=30)))
    assert (await p.move(agent, part["id"], "payment", "4.00")).status_code == 201
    await mark_overdue(p.app.context, today=today)
    assert (await p.get(agent, late["id"])).json()["status"] == "overdue"
    later = today + timedelta(days=20)
    moved = await p.update(agent, late["id"], due_date=str(later))
    assert (moved["status"], moved["overdue_at"]) == ("planned", None)
    assert (await p.update(agent, part["id"], due_date=str(later)))["status"] == "partially_paid"
    balance = (await p.client.get(f"{API}/balances", headers=agent.headers)).json()
    assert balance["balances"][0]["overdue"] == "0.00"
    # past the new date it is overdue again, with an event of its own
    await mark_overdue(p.app.context, today=later + timedelta(days=1))
    assert (await p.get(agent, late["id"])).json()["status"] == "overdue"
    assert len(await p.events("payments.payment.overdue")) == 4


async def test_a_due_date_still_past_keeps_the_payment_overdue(payments: Payments) -> None:
    today = utcnow().date()
    p = payments
    agent = await p.user("agent")
    late = await p.create(agent, amount="10.00", due_date=str(today - timedelta(days=30)))
    await mark_overdue(p.app.context, today=today)
    moved = await p.update(agent, late["id"], due_date=str(today - timedelta(days=10)))
    assert moved["status"] == "overdue" and moved["overdue_at"] is not None
