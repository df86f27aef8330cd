"""Deleting a deal: its own entries go with it; its policies, which stay, keep their history."""

from __future__ import annotations

from deals_kit import API, Deals


async def test_deleting_a_deal_keeps_the_history_of_its_policies(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"])
    policy = {
        "number": "P-1", "insurer": "Allianz", "client_id": client["id"], "deal_id": deal["id"],
        "product": "Motor", "premium": "100.00", "currency": "EUR",
        "start_date": "2026-01-01", "end_date": "2027-01-01",
    }  # fmt: skip
    created = await deals.client.post(f"{API}/policies", json=policy, headers=admin.headers)
    assert created.status_code == 201, created.text
    policy_id = created.json()["id"]
    issued = await deals.client.post(f"{API}/policies/{policy_id}/activate", headers=admin.headers)
    assert issued.status_code == 200, issued.text
    note = {"kind": "note", "deal_id": deal["id"], "subject": "about the deal"}
    posted = await deals.client.post(f"{API}/activities", json=note, headers=admin.headers)
    assert posted.status_code == 201, posted.text

    gone = await deals.client.delete(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text

    after = await deals.client.get(f"{API}/policies/{policy_id}", headers=admin.headers)
    assert after.status_code == 200 and after.json()["deal_id"] is None
    left = await deals.client.get(
        f"{API}/activities", params={"policy": policy_id}, headers=admin.headers
    )
    items = left.json()["items"]
    assert [i["subject"] for i in items] == ["Policy issued"]
    assert items[0]["deal_id"] is None
    timeline = await deals.client.get(
        f"{API}/clients/{client['id']}/timeline", headers=admin.headers
    )
    assert [i["subject"] for i in timeline.json()["items"]] == ["Policy issued"]
