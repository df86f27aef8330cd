"""Who may own a record: a user whose roles may write deals records, and for a deal or a
policy, one who may see its client.

A viewer (``deals:read`` and ``deals:all_records``, no ``deals:write``) used to be
accepted as the owner of a client, deal or policy a manager created or handed over;
an agent was accepted as the owner of a deal on another agent's client, a deal that
agent could then see but not its client.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Client, Deal, Policy
from deals_kit import API, Deals
from factories import get_row, make_client, make_deal, make_policy

from crm2_core.api import utcnow

SHIFT = utcnow().year + 1 - 2026
NOT_PERMITTED = "urn:crm2:problem:owner-not-permitted"
CANNOT_SEE = "urn:crm2:problem:deals-owner-cannot-see-client"


def _policy_body(client_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    body = {
        "number": f"P-{uuid.uuid4().hex[:8]}",
        "insurer": "Allianz",
        "client_id": str(client_id),
        "product": "Home",
        "premium": "120.00",
        "currency": "EUR",
        "start_date": f"{2026 + SHIFT}-01-01",
        "end_date": f"{2027 + SHIFT}-01-01",
    }
    return {**body, **fields}


async def _patch(deals: Deals, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    etag = (await deals.client.get(f"{API}/{path}", headers=headers)).headers["etag"]
    return await deals.client.patch(
        f"{API}/{path}", json=body, headers={**headers, "If-Match": etag}
    )


def _refused(response: Any, problem: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == problem, response.text


async def test_a_viewer_is_given_no_client(deals: Deals) -> None:
    manager, viewer = await deals.user("manager"), await deals.user("viewer")
    client = await make_client(deals.app, manager.id)

    created = await deals.client.post(
        f"{API}/clients",
        json={"kind": "person", "name": "X", "owner_id": str(viewer.id)},
        headers=manager.headers,
    )
    patched = await _patch(
        deals, f"clients/{client.id}", manager.headers, {"owner_id": str(viewer.id)}
    )

    _refused(created, NOT_PERMITTED)
    assert "deals:write" in created.json()["detail"]
    _refused(patched, NOT_PERMITTED)
    assert (await get_row(deals.app, Client, client.id)).owner_id == manager.id


async def test_a_viewer_is_given_no_deal(deals: Deals) -> None:
    manager, viewer = await deals.user("manager"), await deals.user("viewer")
    client = await make_client(deals.app, manager.id)
    deal = await make_deal(deals.app, client)

    created = await deals.client.post(
        f"{API}/deals",
        json={"title": "D", "client_id": str(client.id), "owner_id": str(viewer.id)},
        headers=manager.headers,
    )
    patched = await _patch(deals, f"deals/{deal.id}", manager.headers, {"owner_id": str(viewer.id)})

    _refused(created, NOT_PERMITTED)
    _refused(patched, NOT_PERMITTED)
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == manager.id


async def test_a_viewer_is_given_no_policy(deals: Deals) -> None:
    manager, viewer = await deals.user("manager"), await deals.user("viewer")
    client = await make_client(deals.app, manager.id)
    policy = await make_policy(deals.app, client)

    created = await deals.client.post(
        f"{API}/policies",
        json=_policy_body(client.id, owner_id=str(viewer.id)),
        headers=manager.headers,
    )
    patched = await _patch(
        deals, f"policies/{policy.id}", manager.headers, {"owner_id": str(viewer.id)}
    )

    _refused(created, NOT_PERMITTED)
    _refused(patched, NOT_PERMITTED)
    assert (await get_row(deals.app, Policy, policy.id)).owner_id == manager.id


async def test_users_who_may_write_are_still_given_records(deals: Deals) -> None:
    manager, agent = await deals.user("manager"), await deals.user("agent")
    other_manager = await deals.user("manager")

    mine = await deals.client.post(
        f"{API}/clients",
        json={"kind": "person", "name": "Y", "owner_id": str(agent.id)},
        headers=manager.headers,
    )
    assert mine.status_code == 201, mine.text
    # a manager sees every client: they may own a deal on an agent's client
    deal = await deals.client.post(
        f"{API}/deals",
        json={"title": "D", "client_id": mine.json()["id"], "owner_id": str(other_manager.id)},
        headers=manager.headers,
    )
    assert deal.status_code == 201, deal.text


async def test_an_agent_owns_no_deal_on_a_client_they_cannot_see(deals: Deals) -> None:
    manager = await deals.user("manager")
    one, two = await deals.user("agent"), await deals.user("agent")
    theirs = await make_client(deals.app, one.id)
    mine = await make_client(deals.app, two.id)
    deal = await make_deal(deals.app, mine)

    created = await deals.client.post(
        f"{API}/deals",
        json={"title": "D", "client_id": str(theirs.id), "owner_id": str(two.id)},
        headers=manager.headers,
    )
    given = await _patch(
        deals, f"deals/{deal.id}", manager.headers,
        {"client_id": str(theirs.id)},
    )  # fmt: skip
    # the owner of the other client, on a client of ``two``
    handed = await _patch(deals, f"deals/{deal.id}", manager.headers, {"owner_id": str(one.id)})

    _refused(created, CANNOT_SEE)
    _refused(given, CANNOT_SEE)
    _refused(handed, CANNOT_SEE)
    row = await get_row(deals.app, Deal, deal.id)
    assert (row.owner_id, row.client_id) == (two.id, mine.id)
    own = await deals.client.get(f"{API}/deals", headers=two.headers)
    assert [d["id"] for d in own.json()["items"]] == [str(deal.id)]


async def test_an_agent_owns_no_policy_on_a_client_they_cannot_see(deals: Deals) -> None:
    manager = await deals.user("manager")
    one, two = await deals.user("agent"), await deals.user("agent")
    theirs = await make_client(deals.app, one.id)
    policy = await make_policy(deals.app, theirs)

    created = await deals.client.post(
        f"{API}/policies",
        json=_policy_body(theirs.id, owner_id=str(two.id)),
        headers=manager.headers,
    )
    handed = await _patch(
        deals, f"policies/{policy.id}", manager.headers, {"owner_id": str(two.id)}
    )

    _refused(created, CANNOT_SEE)
    _refused(handed, CANNOT_SEE)
    assert (await get_row(deals.app, Policy, policy.id)).owner_id == one.id


async def test_moving_a_deal_and_its_owner_to_a_visible_client_together_is_fine(
    deals: Deals,
) -> None:
    manager = await deals.user("manager")
    one, two = await deals.user("agent"), await deals.user("agent")
    theirs = await make_client(deals.app, one.id)
    mine = await make_client(deals.app, two.id)
    deal = await make_deal(deals.app, mine)

    moved = await _patch(
        deals, f"deals/{deal.id}", manager.headers,
        {"client_id": str(theirs.id), "owner_id": str(one.id)},
    )  # fmt: skip

    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_id"] == str(one.id)


async def test_a_leaving_users_records_are_not_handed_to_a_viewer(deals: Deals) -> None:
    admin = await deals.user("admin")
    leaving, viewer = await deals.user("agent"), await deals.user("viewer")
    client = await make_client(deals.app, leaving.id)
    deal = await make_deal(deals.app, client)

    refused = await deals.client.post(
        f"/api/v1/auth/users/{leaving.id}/reassign",
        json={"to": str(viewer.id)},
        headers=admin.headers,
    )

    _refused(refused, NOT_PERMITTED)
    assert (await get_row(deals.app, Client, client.id)).owner_id == leaving.id
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == leaving.id


async def test_a_user_owning_no_deals_records_may_hand_over_to_a_viewer(deals: Deals) -> None:
    admin = await deals.user("admin")
    leaving, viewer = await deals.user("agent"), await deals.user("viewer")

    answer = await deals.client.post(
        f"/api/v1/auth/users/{leaving.id}/reassign",
        json={"to": str(viewer.id)},
        headers=admin.headers,
    )

    assert answer.status_code == 200, answer.text


async def test_an_import_gives_no_client_to_a_viewer(deals: Deals) -> None:
    manager, agent, viewer = (
        await deals.user("manager"), await deals.user("agent"), await deals.user("viewer"),
    )  # fmt: skip
    client = await deals.create_client(agent.headers, name="Anna", emails=["anna@x.example"])
    rows = (
        "name,emails,owner_email\n"
        f"Anna,anna@x.example,{viewer.email}\n"  # an existing client handed over
        f"Bert,bert@x.example,{viewer.email}\n"  # a new one
    )
    files = {"file": ("clients.csv", rows.encode(), "text/csv")}

    answer = await deals.client.post(f"{API}/clients/import", files=files, headers=manager.headers)

    assert answer.status_code == 422, answer.text
    reasons = [e["reason"] for e in answer.json()["report"]["errors"]]
    assert len(reasons) == 2 and all("deals:write" in r for r in reasons), reasons
    assert (await get_row(deals.app, Client, uuid.UUID(client["id"]))).owner_id == agent.id
    listed = await deals.client.get(f"{API}/clients", headers=manager.headers)
    assert [c["name"] for c in listed.json()["items"]] == ["Anna"]
