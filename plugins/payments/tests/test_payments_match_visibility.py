"""A statement line is matched by hand only to a payment the caller can see.

``payments:reconcile`` without ``payments:all_records`` (a custom role): ``manual_match``
read the payment by id with no visibility rule, so a clerk booked money on, and learnt
the existence of, another user's payment. It is 404 now, and nothing is booked.
"""

from __future__ import annotations

from payments_kit import API, Payments, key
from test_payments_reconciliation import statement, upload


async def test_a_clerk_matches_a_line_only_to_a_payment_they_can_see(
    payments: Payments,
) -> None:
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    role = {
        "name": "clerk",
        "permissions": ["payments:read", "payments:write", "payments:reconcile"],
    }
    made = await p.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    assert made.status_code == 201, made.text
    clerk = await p.user("clerk")
    theirs = await p.create(agent, amount="7.00")
    own = await p.create(clerk, amount="7.00")
    result = await upload(p, clerk.headers, statement("2026-01-01;5,00;EUR;zz;Y"))
    lines = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=clerk.headers)
    (line,) = lines.json()["items"]
    url = f"{API}/statement-lines/{line['id']}/match"
    refused = await p.client.post(
        url, json={"payment_id": theirs["id"]}, headers={**clerk.headers, **key()}
    )
    assert refused.status_code == 404, refused.text
    assert refused.json()["type"].endswith("payments-payment-not-found")
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await p.get(agent, theirs["id"])).json()["paid"] == "0.00"
    again = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=clerk.headers)
    assert again.json()["items"][0]["status"] == "unmatched"
    matched = await p.client.post(
        url, json={"payment_id": own["id"]}, headers={**clerk.headers, **key()}
    )
    assert matched.status_code == 200, matched.text
    assert (await p.get(clerk, own["id"])).json()["paid"] == "5.00"
