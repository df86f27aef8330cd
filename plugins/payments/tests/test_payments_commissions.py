"""Commission follows a premium's amount, not only the money moved on it.

The README (rule 6): "the sum of a premium's entries is always what its rule says". A
fixed commission is earned once the premium is paid in full; a PATCH of the amount can
make a premium paid in full (or no longer so) without any money moving, and the ledger
used to change only with money: the commission was never earned (or stayed earned).
"""

from __future__ import annotations

from typing import Any

from payments_kit import API, Payments, User


async def _fixed_rule(p: Payments, admin: User) -> None:
    await p.commission_rule(admin, insurer="Allianz", fixed_amount="5.00", currency="EUR")


async def _commissions(p: Payments, user: User, payment_id: str) -> list[dict[str, Any]]:
    listed = await p.client.get(
        f"{API}/commissions", params={"payment_id": payment_id}, headers=user.headers
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_an_amount_lowered_to_what_was_paid_earns_the_fixed_commission(
    payments: Payments,
) -> None:
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    await _fixed_rule(p, admin)
    made = await p.create(agent, amount="100.00", insurer="Allianz")
    assert (await p.move(agent, made["id"], "payment", "50.00")).status_code == 201
    assert await _commissions(p, agent, made["id"]) == []
    assert (await p.update(agent, made["id"], amount="50.00"))["status"] == "paid"
    [entry] = await _commissions(p, agent, made["id"])
    assert (entry["amount"], entry["allocation_id"]) == ("5.00", None)


async def test_an_amount_raised_above_what_was_paid_takes_the_fixed_commission_back(
    payments: Payments,
) -> None:
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    await _fixed_rule(p, admin)
    made = await p.create(agent, amount="100.00", insurer="Allianz")
    assert (await p.move(agent, made["id"], "payment", "100.00")).status_code == 201
    assert (await p.update(agent, made["id"], amount="150.00"))["status"] == "partially_paid"
    entries = await _commissions(p, agent, made["id"])
    assert sorted(e["amount"] for e in entries) == ["-5.00", "5.00"]
    # paid in full again: earned again, once
    assert (await p.move(agent, made["id"], "payment", "50.00")).status_code == 201
    entries = await _commissions(p, agent, made["id"])
    assert sorted(e["amount"] for e in entries) == ["-5.00", "5.00", "5.00"]


async def test_basis_points_sent_for_a_fixed_rule_are_422_not_dropped(payments: Payments) -> None:
    """A PATCH answered 200 while it ignored the one field it was sent."""
    p = payments
    admin = await p.user("admin")
    rule = {"insurer": "Allianz", "fixed_amount": "5.00", "currency": "EUR"}
    made = await p.client.post(f"{API}/commission-rules", json=rule, headers=admin.headers)
    url = f"{API}/commission-rules/{made.json()['id']}"
    refused = await p.client.patch(
        url, json={"basis_points": 500}, headers={**admin.headers, "If-Match": made.headers["ETag"]}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("payments-invalid-rule")
    after = await p.client.get(url, headers=admin.headers)
    assert after.json()["version"] == made.json()["version"]
    assert (after.json()["basis_points"], after.json()["fixed_amount"]) == (None, "5.00")
