"""A deal moved to another client: its timeline goes along; its policies keep it put."""

from __future__ import annotations

from typing import Any

from deals_kit import API, Deals, User


async def _patch(deals: Deals, user: User, deal_id: str, body: dict[str, Any]) -> Any:
    etag = (await deals.client.get(f"{API}/deals/{deal_id}", headers=user.headers)).headers
    return await deals.client.patch(
        f"{API}/deals/{deal_id}", json=body, headers={**user.headers, "If-Match": etag["etag"]}
    )


async def test_a_deal_moved_to_another_client_takes_its_timeline_along(deals: Deals) -> None:
    admin = await deals.user("admin")
    first = await deals.create_client(admin.headers)
    second = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, first["id"])
    stage = (await deals.pipeline(admin.headers))["stages"][1]
    moved = await deals.client.post(
        f"{API}/deals/{deal['id']}/move", json={"stage_id": stage["id"]}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    note = {"kind": "note", "deal_id": deal["id"], "subject": "called them"}
    posted = await deals.client.post(f"{API}/activities", json=note, headers=admin.headers)
    assert posted.status_code == 201, posted.text
    response = await _patch(deals, admin, deal["id"], {"client_id": second["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["client_id"] == second["id"]

    def timeline(client: Any) -> str:
        return f"{API}/clients/{client['id']}/timeline"

    new = (await deals.client.get(timeline(second), headers=admin.headers)).json()["items"]
    assert sorted(i["subject"] for i in new) == ["Moved from Lead to Qualified", "called them"]
    old = (await deals.client.get(timeline(first), headers=admin.headers)).json()["items"]
    assert old == []
    # the old client, now without deals, can go: the deal's history stays
    gone = await deals.client.delete(f"{API}/clients/{first['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    left = await deals.client.get(
        f"{API}/activities", params={"deal": deal["id"]}, headers=admin.headers
    )
    assert len(left.json()["items"]) == 2


async def test_a_deal_with_policies_cannot_move_to_another_client(deals: Deals) -> None:
    admin = await deals.user("admin")
    first = await deals.create_client(admin.headers)
    second = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, first["id"])
    policy = {
        "number": "P-1", "insurer": "Allianz", "client_id": first["id"], "deal_id": deal["id"],
        "product": "Motor", "premium": "100.00", "currency": "EUR",
        "start_date": "2026-01-01", "end_date": "2027-01-01",
    }  # fmt: skip
    created = await deals.client.post(f"{API}/policies", json=policy, headers=admin.headers)
    assert created.status_code == 201, created.text
    response = await _patch(deals, admin, deal["id"], {"client_id": second["id"]})
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "urn:crm2:problem:deals-in-use"
    after = await deals.client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert after.json()["client_id"] == first["id"]
    # naming the client it already has is no move
    same = await _patch(deals, admin, deal["id"], {"client_id": first["id"], "title": "Renamed"})
    assert same.status_code == 200, same.text
