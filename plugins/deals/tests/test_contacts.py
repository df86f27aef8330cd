"""Contacts: nested under their client, visible exactly when the client is."""

from __future__ import annotations

from deals_kit import API, Deals


async def test_contact_crud(deals: Deals) -> None:
    admin = await deals.user("admin")
    company = await deals.create_client(admin.headers, kind="company", name="Acme")
    url = f"{API}/clients/{company['id']}/contacts"
    body = {"name": "Jane Doe", "position": "CFO", "email": "Jane@Acme.example"}
    created = await deals.client.post(url, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["email"] == "jane@acme.example" and contact["client_id"] == company["id"]
    listed = await deals.client.get(url, headers=admin.headers)
    assert [c["id"] for c in listed.json()["items"]] == [contact["id"]]

    one = f"{API}/contacts/{contact['id']}"
    got = await deals.client.get(one, headers=admin.headers)
    assert got.status_code == 200 and got.headers["etag"] == '"v1"'
    assert listed.json()["items"] == [got.json()]  # the page's plain rows show the same
    no_match = await deals.client.patch(one, json={"position": "CEO"}, headers=admin.headers)
    assert no_match.status_code == 428
    patched = await deals.client.patch(
        one,
        json={"position": "CEO", "phone": "+1 555"},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 200
    assert (patched.json()["position"], patched.json()["phone"]) == ("CEO", "+1 555")
    stale = await deals.client.patch(
        one, json={"position": "CTO"}, headers={**admin.headers, "If-Match": '"v1"'}
    )
    assert stale.status_code == 412
    assert (await deals.client.delete(one, headers=admin.headers)).status_code == 204
    assert (await deals.client.get(one, headers=admin.headers)).status_code == 404


async def test_contacts_of_another_agents_client_are_404(deals: Deals) -> None:
    owner, other = await deals.user("agent"), await deals.user("agent")
    company = await deals.create_client(owner.headers, kind="company")
    url = f"{API}/clients/{company['id']}/contacts"
    contact = (await deals.client.post(url, json={"name": "C"}, headers=owner.headers)).json()
    assert (await deals.client.get(url, headers=other.headers)).status_code == 404
    add = await deals.client.post(url, json={"name": "Sneaky"}, headers=other.headers)
    assert add.status_code == 404
    one = f"{API}/contacts/{contact['id']}"
    assert (await deals.client.get(one, headers=other.headers)).status_code == 404
    patch = await deals.client.patch(
        one, json={"name": "X"}, headers={**other.headers, "If-Match": '"v1"'}
    )
    assert patch.status_code == 404
