"""Policies: CRUD, numbering per insurer, exact premiums, transitions, renewals, visibility."""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Activity, Policy
from deals_kit import API, Deals
from factories import events_of, make_client, make_deal, make_policy, rows

from crm2_core.api import utcnow

# Policy dates a year or more ahead of the real today (2026 here is next year): the
# policy job the app runs at start on the real clock never expires or announces them.
SHIFT = utcnow().year + 1 - 2026


def y(iso: str) -> str:
    """``iso`` (written as if next year were 2026) moved to the years this run needs."""
    return f"{int(iso[:4]) + SHIFT}{iso[4:]}"


POLICIES = f"{API}/policies"


def body(client_id: Any, **fields: Any) -> dict[str, Any]:
    values = {
        "number": f"N-{uuid.uuid4().hex[:6]}",
        "insurer": "Allianz",
        "client_id": str(client_id),
        "product": "Motor",
        "premium": "650.00",
        "currency": "EUR",
        "payment_frequency": "annual",
        "start_date": y("2026-01-01"),
        "end_date": y("2027-01-01"),
    }
    values.update(fields)
    return values


async def create(deals: Deals, headers: dict[str, str], client_id: Any, **fields: Any) -> Any:
    response = await deals.client.post(POLICIES, json=body(client_id, **fields), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_and_get_policy(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    created = await create(deals, admin.headers, client.id, number="AZ-1", premium="1234.56")
    assert created["status"] == "draft"
    assert created["owner_id"] == str(client.owner_id)
    r = await deals.client.get(f"{POLICIES}/{created['id']}", headers=admin.headers)
    assert r.status_code == 200
    assert r.headers["etag"] == '"v1"'
    got = r.json()
    listed = await deals.client.get(POLICIES, headers=admin.headers)
    assert listed.json()["items"] == [got]  # the page's plain rows show what the GET does
    assert {k: got[k] for k in ("number", "insurer", "premium", "currency", "renewal_of")} == {
        "number": "AZ-1",
        "insurer": "Allianz",
        "premium": "1234.56",
        "currency": "EUR",
        "renewal_of": None,
    }


async def test_premium_round_trips_exactly(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    cases = [("9999999999999.99", "EUR"), ("0.10", "EUR"), ("12.345", "KWD"), ("15000", "JPY")]
    for premium, currency in cases:
        created = await create(deals, admin.headers, client.id, premium=premium, currency=currency)
        r = await deals.client.get(f"{POLICIES}/{created['id']}", headers=admin.headers)
        assert r.json()["premium"] == premium
    stored = await rows(deals.app, Policy, Policy.currency == "EUR")
    assert sorted(p.premium_minor for p in stored) == [10, 999999999999999]


async def test_premium_as_json_number_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    r = await deals.client.post(
        POLICIES, json=body(client.id, premium=650.1), headers=admin.headers
    )
    assert r.status_code == 422


async def test_premium_with_more_decimals_than_the_currency_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    r = await deals.client.post(
        POLICIES, json=body(client.id, premium="10.001"), headers=admin.headers
    )
    assert r.status_code == 422
    r = await deals.client.post(
        POLICIES, json=body(client.id, premium="10.5", currency="JPY"), headers=admin.headers
    )
    assert r.status_code == 422


async def test_end_date_not_after_start_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    for end in (y("2026-01-01"), y("2025-12-31")):
        r = await deals.client.post(
            POLICIES, json=body(client.id, end_date=end), headers=admin.headers
        )
        assert r.status_code == 422, end


async def test_number_is_unique_per_insurer(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    await create(deals, admin.headers, client.id, number="X-1", insurer="AXA")
    r = await deals.client.post(
        POLICIES, json=body(client.id, number="X-1", insurer="AXA"), headers=admin.headers
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("deals-policy-number-taken")
    await create(deals, admin.headers, client.id, number="X-1", insurer="Zurich")


async def test_number_taken_by_an_invisible_policy_is_still_409(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    other = await make_client(deals.app, agent2.id)
    await make_policy(deals.app, other, number="SAME", insurer="AXA")
    mine = await make_client(deals.app, agent1.id)
    r = await deals.client.post(
        POLICIES, json=body(mine.id, number="SAME", insurer="AXA"), headers=agent1.headers
    )
    assert r.status_code == 409


async def test_create_emits_policy_created_with_owner(deals: Deals) -> None:
    admin, agent = await deals.user("admin"), await deals.user("agent")
    client = await make_client(deals.app, agent.id)
    created = await create(deals, admin.headers, client.id, premium="99.90")
    (event,) = await events_of(deals.app, "deals.policy.created")
    assert event.subject == created["id"]
    assert event.data["owner_id"] == str(agent.id)
    assert event.data["premium"] == "99.90"


async def test_create_as_active_announces_the_issue(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    created = await create(deals, admin.headers, client.id, status="active")
    assert created["status"] == "active"
    assert len(await events_of(deals.app, "deals.policy.activated")) == 1


async def test_policy_for_a_deal_of_another_client_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client, other = await make_client(deals.app, admin.id), await make_client(deals.app, admin.id)
    deal = await make_deal(deals.app, other)
    r = await deals.client.post(
        POLICIES, json=body(client.id, deal_id=str(deal.id)), headers=admin.headers
    )
    assert r.status_code == 422
    ok = await create(deals, admin.headers, other.id, deal_id=str(deal.id))
    assert ok["deal_id"] == str(deal.id)


async def test_agent_cannot_write_a_policy_for_another_agents_client(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, agent2.id)
    r = await deals.client.post(POLICIES, json=body(client.id), headers=agent1.headers)
    assert r.status_code == 422


async def test_agent_cannot_assign_a_policy_to_someone_else(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, agent1.id)
    r = await deals.client.post(
        POLICIES, json=body(client.id, owner_id=str(agent2.id)), headers=agent1.headers
    )
    assert r.status_code == 403


async def test_agent_gets_404_on_another_agents_policy_and_never_lists_it(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    theirs = await make_policy(deals.app, await make_client(deals.app, agent2.id))
    mine = await make_policy(deals.app, await make_client(deals.app, agent1.id))
    r = await deals.client.get(f"{POLICIES}/{theirs.id}", headers=agent1.headers)
    assert r.status_code == 404
    r = await deals.client.post(f"{POLICIES}/{theirs.id}/cancel", headers=agent1.headers)
    assert r.status_code == 404
    listed = (await deals.client.get(POLICIES, headers=agent1.headers)).json()["items"]
    assert [p["id"] for p in listed] == [str(mine.id)]
    viewer = await deals.user("viewer")
    listed = (await deals.client.get(POLICIES, headers=viewer.headers)).json()["items"]
    assert len(listed) == 2


async def test_patch_needs_if_match_and_refuses_a_stale_one(deals: Deals) -> None:
    admin = await deals.user("admin")
    created = await create(deals, admin.headers, (await make_client(deals.app, admin.id)).id)
    url = f"{POLICIES}/{created['id']}"
    r = await deals.client.patch(url, json={"product": "Fleet"}, headers=admin.headers)
    assert r.status_code == 428
    r = await deals.client.patch(
        url,
        json={"product": "Fleet", "premium": "700.50"},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["product"], r.json()["premium"], r.headers["etag"]) == (
        "Fleet",
        "700.50",
        '"v2"',
    )
    r = await deals.client.patch(
        url, json={"product": "Home"}, headers={**admin.headers, "If-Match": '"v1"'}
    )
    assert r.status_code == 412


async def test_patch_checks_dates_against_the_stored_ones(deals: Deals) -> None:
    admin = await deals.user("admin")
    created = await create(deals, admin.headers, (await make_client(deals.app, admin.id)).id)
    r = await deals.client.patch(
        f"{POLICIES}/{created['id']}",
        json={"end_date": y("2025-06-01")},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert r.status_code == 422


async def test_patch_to_a_taken_number_is_409(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    await create(deals, admin.headers, client.id, number="A-1")
    second = await create(deals, admin.headers, client.id, number="A-2")
    r = await deals.client.patch(
        f"{POLICIES}/{second['id']}",
        json={"number": "A-1"},
        headers={**admin.headers, "If-Match": f'"v{second["version"]}"'},
    )
    assert r.status_code == 409


async def test_activate_issues_a_draft_once(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    created = await create(deals, admin.headers, client.id)
    url = f"{POLICIES}/{created['id']}/activate"
    r = await deals.client.post(url, headers={**admin.headers, "If-Match": '"v1"'})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.headers["etag"]) == ("active", '"v2"')
    (event,) = await events_of(deals.app, "deals.policy.activated")
    assert event.subject == created["id"] and event.data["owner_id"] == str(admin.id)
    (entry,) = await rows(deals.app, Activity, Activity.policy_id == uuid.UUID(created["id"]))
    assert (entry.kind, entry.subject, entry.client_id) == ("system", "Policy issued", client.id)
    r = await deals.client.post(url, headers=admin.headers)
    assert r.status_code == 409
    assert r.json()["type"].endswith("deals-invalid-policy-transition")


async def test_activate_with_a_stale_if_match_is_412(deals: Deals) -> None:
    admin = await deals.user("admin")
    created = await create(deals, admin.headers, (await make_client(deals.app, admin.id)).id)
    r = await deals.client.post(
        f"{POLICIES}/{created['id']}/activate", headers={**admin.headers, "If-Match": '"v7"'}
    )
    assert r.status_code == 412


async def test_cancel_draft_or_active_but_not_twice(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    active = await make_policy(deals.app, client, status="active")
    r = await deals.client.post(
        f"{POLICIES}/{active.id}/cancel", json={"reason": "sold the car"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    (event,) = await events_of(deals.app, "deals.policy.cancelled")
    assert event.data == {"client_id": str(client.id), "owner_id": str(admin.id)}
    (entry,) = await rows(deals.app, Activity, Activity.policy_id == active.id)
    assert (entry.subject, entry.body) == (
        "Policy cancelled",
        f"Allianz {active.number}: sold the car",
    )
    r = await deals.client.post(f"{POLICIES}/{active.id}/cancel", headers=admin.headers)
    assert r.status_code == 409
    expired = await make_policy(deals.app, client, status="expired")
    r = await deals.client.post(f"{POLICIES}/{expired.id}/cancel", headers=admin.headers)
    assert r.status_code == 409
    draft = await make_policy(deals.app, client, status="draft")
    r = await deals.client.post(f"{POLICIES}/{draft.id}/cancel", headers=admin.headers)
    assert r.json()["status"] == "cancelled"


async def test_renew_creates_a_draft_for_the_next_term(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    created = await create(deals, admin.headers, client.id, number="R-1", status="active")
    r = await deals.client.post(f"{POLICIES}/{created['id']}/renew", headers=admin.headers)
    assert r.status_code == 201, r.text
    renewal = r.json()
    assert renewal["renewal_of"] == created["id"]
    assert (renewal["status"], renewal["number"]) == ("draft", "R-1-R1")
    assert (renewal["start_date"], renewal["end_date"]) == (y("2027-01-01"), y("2028-01-01"))
    assert renewal["premium"] == created["premium"]
    created_events = await events_of(deals.app, "deals.policy.created")
    assert created_events[-1].data["renewal_of"] == created["id"]
    r = await deals.client.post(f"{POLICIES}/{created['id']}/renew", headers=admin.headers)
    assert r.status_code == 409


async def test_renew_a_draft_is_409(deals: Deals) -> None:
    admin = await deals.user("admin")
    created = await create(deals, admin.headers, (await make_client(deals.app, admin.id)).id)
    r = await deals.client.post(f"{POLICIES}/{created['id']}/renew", headers=admin.headers)
    assert r.status_code == 409


async def test_a_renewal_recorded_by_post_obeys_the_renew_rules(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    cancelled = await make_policy(deals.app, client, status="cancelled")
    draft = await make_policy(deals.app, client, status="draft")
    for old in (cancelled, draft):
        r = await deals.client.post(
            POLICIES, json=body(client.id, renewal_of=str(old.id)), headers=admin.headers
        )
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "urn:crm2:problem:deals-invalid-policy-transition"
    active = await make_policy(deals.app, client, status="active")
    renewed = await deals.client.post(f"{POLICIES}/{active.id}/renew", headers=admin.headers)
    assert renewed.status_code == 201, renewed.text
    second = await deals.client.post(
        POLICIES, json=body(client.id, renewal_of=str(active.id)), headers=admin.headers
    )
    assert second.status_code == 409, second.text
    assert second.json()["type"] == "urn:crm2:problem:deals-renewal-exists"
    assert len(await rows(deals.app, Policy, Policy.renewal_of == active.id)) == 1
    # an expired policy without an open renewal may have one recorded
    expired = await make_policy(deals.app, client, status="expired")
    recorded = await create(deals, admin.headers, client.id, renewal_of=str(expired.id))
    assert recorded["renewal_of"] == str(expired.id)


async def test_list_filters(deals: Deals) -> None:
    admin = await deals.user("admin")
    a, b = await make_client(deals.app, admin.id), await make_client(deals.app, admin.id)
    p1 = await create(
        deals, admin.headers, a.id, number="ABC-1", insurer="AXA", end_date=y("2027-01-01")
    )
    p2 = await create(
        deals, admin.headers, a.id, number="XYZ-2", insurer="Zurich", end_date=y("2027-06-01")
    )
    p3 = await create(
        deals,
        admin.headers,
        b.id,
        number="QQQ-3",
        insurer="AXA",
        end_date=y("2028-01-01"),
        status="active",
    )

    async def ids(**params: Any) -> set[str]:
        r = await deals.client.get(POLICIES, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["items"]}

    assert await ids(client=str(a.id)) == {p1["id"], p2["id"]}
    assert await ids(insurer="AXA") == {p1["id"], p3["id"]}
    assert await ids(status="active") == {p3["id"]}
    assert await ids(status=["active", "draft"]) == {p1["id"], p2["id"], p3["id"]}
    assert await ids(end_before=y("2027-06-01")) == {p1["id"], p2["id"]}
    assert await ids(end_after=y("2027-06-01")) == {p2["id"], p3["id"]}
    assert await ids(q="xyz") == {p2["id"]}
    assert await ids(q="zuri") == {p2["id"]}
    assert await ids(owner=str(uuid.uuid4())) == set()
    assert await ids(updated_since="2000-01-01T00:00:00Z") == {p1["id"], p2["id"], p3["id"]}
    r = await deals.client.get(POLICIES, params={"sort": "title"}, headers=admin.headers)
    assert r.status_code == 422


async def test_sort_by_end_date_pages_with_a_cursor(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    for end in (y("2027-03-01"), y("2027-01-01"), y("2027-02-01"), y("2027-02-01")):
        await create(deals, admin.headers, client.id, end_date=end)
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "end_date", "limit": 3}
    while True:
        r = await deals.client.get(POLICIES, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        seen += [p["end_date"] for p in r.json()["items"]]
        if not r.json()["next_cursor"]:
            break
        params["cursor"] = r.json()["next_cursor"]
    assert seen == [y("2027-01-01"), y("2027-02-01"), y("2027-02-01"), y("2027-03-01")]
    r = await deals.client.get(
        POLICIES, params={"sort": "number", "cursor": params["cursor"]}, headers=admin.headers
    )
    assert r.status_code == 400


async def test_delete_needs_the_delete_permission(deals: Deals) -> None:
    agent, manager = await deals.user("agent"), await deals.user("manager")
    policy = await make_policy(deals.app, await make_client(deals.app, agent.id))
    r = await deals.client.delete(f"{POLICIES}/{policy.id}", headers=agent.headers)
    assert r.status_code == 403
    r = await deals.client.delete(f"{POLICIES}/{policy.id}", headers=manager.headers)
    assert r.status_code == 204
    r = await deals.client.get(f"{POLICIES}/{policy.id}", headers=manager.headers)
    assert r.status_code == 404
