"""Deleting a user who owns records: 409 naming them, then hand-over and delete (issue 9.7)."""

from __future__ import annotations

import uuid

from crm2_deals.models import Activity, Client, Deal, Policy
from deals_kit import Deals
from factories import get_row, make_activity, make_client, make_deal, make_policy

USERS = "/api/v1/auth/users"


async def test_deleting_an_owner_is_409_naming_what_they_own(deals: Deals) -> None:
    admin = await deals.user("admin")
    agent = await deals.user("agent")
    client = await make_client(deals.app, agent.id)
    await make_deal(deals.app, client)
    await make_deal(deals.app, client)
    response = await deals.client.delete(f"{USERS}/{agent.id}", headers=admin.headers)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:crm2:problem:user-owns-records"
    owned = {o["table"] + "." + o["column"]: o["count"] for o in body["owned"]}
    assert owned == {"deals_client.owner_id": 1, "deals_deal.owner_id": 2}
    assert f"{USERS}/{agent.id}/reassign" in body["detail"]
    assert (await deals.client.get(f"{USERS}/{agent.id}", headers=admin.headers)).status_code == 200


async def test_reassign_hands_everything_over_then_delete_works(deals: Deals) -> None:
    admin = await deals.user("admin")
    leaving = await deals.user("agent")
    heir = await deals.user("agent")
    client = await make_client(deals.app, leaving.id)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client)
    activity = await make_activity(deals.app, client)
    response = await deals.client.post(
        f"{USERS}/{leaving.id}/reassign", json={"to": str(heir.id)}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["moved"] == {
        "deals_client": 1,
        "deals_deal": 1,
        "deals_policy": 1,
        "deals_activity": 1,
    }
    for model, row in ((Client, client), (Deal, deal), (Policy, policy), (Activity, activity)):
        moved = await get_row(deals.app, model, row.id)
        assert moved.owner_id == heir.id
        assert moved.version == row.version + 1
    updated = await deals.events("deals.deal.updated")
    assert [e.subject for e in updated] == [str(deal.id)]
    assert updated[0].data["changed"] == ["owner_id"]
    assert updated[0].data["previous_owner_id"] == str(leaving.id)
    (handed,) = await deals.events("deals.policy.updated")
    assert (handed.subject, handed.data["owner_id"]) == (str(policy.id), str(heir.id))
    # the heir now sees the records; the leaver can be deleted
    listed = await deals.client.get("/api/v1/deals/clients", headers=heir.headers)
    assert [c["id"] for c in listed.json()["items"]] == [str(client.id)]
    gone = await deals.client.delete(f"{USERS}/{leaving.id}", headers=admin.headers)
    assert gone.status_code == 204, gone.text


async def test_reassign_to_someone_inactive_or_unknown_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    leaving = await deals.user("agent")
    for to in (str(uuid.uuid4()), str(leaving.id)):
        response = await deals.client.post(
            f"{USERS}/{leaving.id}/reassign", json={"to": to}, headers=admin.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "urn:crm2:problem:unknown-user"


async def test_reassign_needs_holding_what_the_owner_holds(deals: Deals) -> None:
    admin = await deals.user("admin")
    role = {"name": "hr", "permissions": ["auth:users"]}
    assert (
        await deals.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    ).status_code == 201
    hr = await deals.user("hr")
    leaving = await deals.user("manager")
    response = await deals.client.post(
        f"{USERS}/{leaving.id}/reassign", json={"to": str(hr.id)}, headers=hr.headers
    )
    assert response.status_code == 403, response.text


async def test_reassign_refuses_an_heir_who_could_not_see_a_client_of_a_third_owner(
    deals: Deals,
) -> None:
    """A manager (``deals:all_records``) owns a deal and a policy on an agent's client:
    handed to another agent, they would be that agent's cards whose client answers them
    404 (a deal's owner must see its client). 422 naming the client, nothing moved; an
    heir who sees every client takes them."""
    admin = await deals.user("admin")
    leaving, agent, manager = (
        await deals.user("manager"), await deals.user("agent"), await deals.user("manager")
    )  # fmt: skip
    third = await deals.user("agent")
    client = await make_client(deals.app, third.id, name="Third's client")
    deal = await make_deal(deals.app, client, owner_id=leaving.id)
    url = f"{USERS}/{leaving.id}/reassign"
    refused = await deals.client.post(url, json={"to": str(agent.id)}, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:crm2:problem:deals-owner-cannot-see-client", problem
    assert "Third's client" in problem["detail"] and str(client.id) in problem["detail"]
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == leaving.id
    # an heir who sees every client takes them
    await make_policy(deals.app, client, owner_id=leaving.id)
    taken = await deals.client.post(url, json={"to": str(manager.id)}, headers=admin.headers)
    assert taken.status_code == 200, taken.text
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == manager.id


async def test_reassign_refuses_an_heir_who_could_not_see_a_client_of_an_activity(
    deals: Deals,
) -> None:
    """The same rule for a manager's note on a third owner's client, with no deal or
    policy of theirs there: 422 naming the client, the note not moved."""
    admin = await deals.user("admin")
    leaving, agent = await deals.user("manager"), await deals.user("agent")
    third = await deals.user("agent")
    client = await make_client(deals.app, third.id, name="Third's client")
    note = await make_activity(deals.app, client, owner_id=leaving.id)
    url = f"{USERS}/{leaving.id}/reassign"
    refused = await deals.client.post(url, json={"to": str(agent.id)}, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:crm2:problem:deals-owner-cannot-see-client", problem
    assert str(client.id) in problem["detail"] and "activity" in problem["detail"], problem
    assert (await get_row(deals.app, Activity, note.id)).owner_id == leaving.id
