"""Money received on an overdue payment that does not settle it leaves it overdue.

The overdue job marks a payment once (``overdue_at``). A part payment on an overdue
payment made it ``partially_paid``: the job never marked it again (``overdue_at`` stays
set) and the rest, still owed past its due date, dropped out of the balances' ``overdue``.
"""

from __future__ import annotations

from datetime import timedelta

from crm2_payments.service.overdue import mark_overdue
from payments_kit import API, Payments

from crm2_core.api import utcnow


async def _overdue(p: Payments) -> float:
    balance = await p.client.get(f"{API}/balances", headers=(await p.user("admin")).headers)
    return float(balance.json()["balances"][0]["overdue"])


async def test_a_part_payment_on_an_overdue_payment_leaves_the_rest_overdue(
    payments: Payments,
) -> None:
    p = payments
    today = utcnow().date()
    agent = await p.user("agent")
    late = await p.create(agent, amount="10.00", due_date=str(today - timedelta(days=30)))
    await mark_overdue(p.app.context, today=today)
    assert (await p.move(agent, late["id"], "payment", "4.00")).status_code == 201
    got = (await p.get(agent, late["id"])).json()
    assert (got["status"], got["outstanding"]) == ("overdue", "6.00")
    assert await _overdue(p) == 6.0
    # the rest settles it
    assert (await p.move(agent, late["id"], "payment", "6.00")).status_code == 201
    assert (await p.get(agent, late["id"])).json()["status"] == "paid"
    assert await _overdue(p) == 0.0


async def test_an_overdue_payment_given_more_to_pay_stays_overdue(payments: Payments) -> None:
    """A PATCH of the amount on an overdue payment: above what was paid it is still owed
    past its due date; down to what was paid it is paid."""
    p = payments
    today = utcnow().date()
    agent = await p.user("agent")
    late = await p.create(agent, amount="10.00", due_date=str(today - timedelta(days=30)))
    await mark_overdue(p.app.context, today=today)
    assert (await p.move(agent, late["id"], "payment", "10.00")).status_code == 201

    async def amount(value: str) -> str:
        status: str = (await p.update(agent, late["id"], amount=value))["status"]
        return status

    assert await amount("15.00") == "overdue"
    assert await _overdue(p) == 5.0
    assert await amount("12.00") == "overdue"
    assert await amount("10.00") == "paid"
    assert await _overdue(p) == 0.0
