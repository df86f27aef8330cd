"""Instalments of nothing: a premium smaller than its number of instalments.

Deals takes a premium of 0.00 (free cover) and any premium down to one minor unit. The
split (README rule 2) then gave instalments of 0.00: payments nobody can pay (every
receipt over-pays them) that the overdue job marked overdue, each with a
``payments.payment.overdue``. Nothing is owed on them, so none is made.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from crm2_payments.service.overdue import mark_overdue
from payments_kit import API, Payments, User

DEALS = "/api/v1/deals"
START = date(2026, 1, 15)


async def _activated(p: Payments, owner: User, premium: str, frequency: str) -> str:
    client = await p.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna Berg"}, headers=owner.headers
    )
    body = {
        "number": f"P-{uuid.uuid4().hex[:6]}", "insurer": "Allianz", "product": "Motor",
        "client_id": client.json()["id"], "premium": premium, "currency": "EUR",
        "payment_frequency": frequency, "start_date": START.isoformat(),
        "end_date": (START + timedelta(days=364)).isoformat(),
    }  # fmt: skip
    made = await p.client.post(f"{DEALS}/policies", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    policy_id = str(made.json()["id"])
    await p.activate(owner, policy_id)
    await p.app.settle_events()
    return policy_id


async def _instalments(p: Payments, user: User, policy_id: str) -> list[dict[str, Any]]:
    listed = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id, "sort": "due_date"}, headers=user.headers
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_a_premium_smaller_than_its_instalments_makes_no_zero_instalment(
    with_deals: Payments,
) -> None:
    agent = await with_deals.user("agent")
    tiny = await _activated(with_deals, agent, "0.05", "monthly")
    free = await _activated(with_deals, agent, "0.00", "quarterly")
    [instalment] = await _instalments(with_deals, agent, tiny)
    assert (instalment["amount"], instalment["instalment"]) == ("0.05", 1)
    assert await _instalments(with_deals, agent, free) == []
    schedules = await with_deals.client.get(
        f"{API}/schedules", params={"policy_id": free}, headers=agent.headers
    )
    [schedule] = schedules.json()["items"]  # one schedule per policy all the same
    assert (schedule["premium"], schedule["instalments"]) == ("0.00", 0)
    assert (await mark_overdue(with_deals.app.context, today=START + timedelta(days=400)))[
        "overdue"
    ] == 1  # the 0.05, not eleven payments of nothing
