"""A policy that ended (expired or cancelled) is history: its term no longer changes.

Its start and end dates stayed editable, so what was insured when could be rewritten
after the fact (claims, renewals and payments refer to that term).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from crm2_deals.models import Policy
from deals_kit import API, Deals
from factories import get_row, make_client, make_policy

POLICIES = f"{API}/policies"
CLOSED = "urn:crm2:problem:deals-policy-closed"


async def _patch(deals: Deals, headers: dict[str, str], policy_id: Any, body: Any) -> Any:
    etag = (await deals.client.get(f"{POLICIES}/{policy_id}", headers=headers)).headers["etag"]
    return await deals.client.patch(
        f"{POLICIES}/{policy_id}", json=body, headers={**headers, "If-Match": etag}
    )


async def test_the_dates_of_an_ended_policy_are_history(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    today = date.today()
    for status in ("expired", "cancelled"):
        policy = await make_policy(
            deals.app, client, status=status,
            start_date=today - timedelta(days=400), end_date=today - timedelta(days=35),
        )  # fmt: skip
        for change in (
            {"end_date": (today + timedelta(days=30)).isoformat()},
            {"start_date": (today - timedelta(days=500)).isoformat()},
        ):
            refused = await _patch(deals, admin.headers, policy.id, change)
            assert refused.status_code == 409, (status, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"] == CLOSED
            assert status in refused.json()["detail"]
        row = await get_row(deals.app, Policy, policy.id)
        assert (row.start_date, row.end_date, row.version) == (
            policy.start_date, policy.end_date, 1,
        )  # fmt: skip
        # its other fields, and its dates sent back unchanged, are not a change of term
        same = {"end_date": policy.end_date.isoformat(), "product": "Renamed"}
        kept = await _patch(deals, admin.headers, policy.id, same)
        assert kept.status_code == 200, kept.text


async def test_the_dates_of_a_draft_or_active_policy_still_change(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    for status in ("draft", "active"):
        policy = await make_policy(deals.app, client, status=status)
        later = (policy.end_date + timedelta(days=10)).isoformat()
        changed = await _patch(deals, admin.headers, policy.id, {"end_date": later})
        assert changed.status_code == 200, changed.text
        assert changed.json()["end_date"] == later
