"""At most one open (draft or active) renewal per policy, even when renewals race.

Two ``POST /policies/{id}/renew`` at once (or a renew and a ``POST /policies`` naming
``renewal_of``) both found no open renewal and both wrote one.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from crm2_deals.models import Policy
from deals_kit import API, Deals
from factories import make_client, make_policy, rows

POLICIES = f"{API}/policies"


async def test_racing_renewals_make_one_renewal(deals: Deals) -> None:
    """On PostgreSQL the requests run at once (each its own connection); on SQLite one
    after the other. Either way: one 201, the others 409 naming the renewal made."""
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client)
    url = f"{POLICIES}/{policy.id}/renew"

    answers = await asyncio.gather(
        *[deals.client.post(url, headers=admin.headers) for _ in range(4)]
    )

    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409, 409, 409], [a.text for a in answers]
    (made,) = [a.json() for a in answers if a.status_code == 201]
    for refused in (a for a in answers if a.status_code == 409):
        problem = refused.json()
        assert problem["type"] == "urn:crm2:problem:deals-renewal-exists", problem
        assert made["id"] in problem["detail"], problem
    assert [p.id for p in await rows(deals.app, Policy, Policy.renewal_of == policy.id)] == [
        uuid.UUID(made["id"])
    ]


async def test_racing_renew_and_recorded_renewal_make_one(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client)
    body = {
        "number": "REC-1", "insurer": "Allianz", "client_id": str(client.id),
        "product": "Motor", "premium": "1.00", "currency": "EUR",
        "start_date": policy.end_date.isoformat(),
        "end_date": (policy.end_date + timedelta(days=365)).isoformat(),
        "renewal_of": str(policy.id),
    }  # fmt: skip

    answers = await asyncio.gather(
        deals.client.post(f"{POLICIES}/{policy.id}/renew", headers=admin.headers),
        deals.client.post(POLICIES, json=body, headers=admin.headers),
        deals.client.post(f"{POLICIES}/{policy.id}/renew", headers=admin.headers),
    )

    assert sorted(a.status_code for a in answers) == [201, 409, 409], [a.text for a in answers]
    assert len(await rows(deals.app, Policy, Policy.renewal_of == policy.id)) == 1


async def test_a_cancelled_renewal_makes_room_for_another(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client)
    first = await deals.client.post(f"{POLICIES}/{policy.id}/renew", headers=admin.headers)
    assert first.status_code == 201, first.text
    cancelled = await deals.client.post(
        f"{POLICIES}/{first.json()['id']}/cancel", headers=admin.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    second = await deals.client.post(f"{POLICIES}/{policy.id}/renew", headers=admin.headers)
    assert second.status_code == 201, second.text
