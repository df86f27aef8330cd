"""An agent works only on their own clients and deals: by id, in lists, exports and summaries."""

from __future__ import annotations

import csv
import io

from deals_kit import API, Deals
from factories import make_client, make_deal


async def test_agent_gets_404_on_another_agents_records(deals: Deals) -> None:
    one, two = await deals.user("agent"), await deals.user("agent")
    client = await deals.create_client(one.headers)
    deal = await deals.create_deal(one.headers, client["id"])
    for url in (f"{API}/clients/{client['id']}", f"{API}/deals/{deal['id']}"):
        assert (await deals.client.get(url, headers=two.headers)).status_code == 404
        patch = await deals.client.patch(
            url, json={"source": "x"} if "/deals/deals/" in url else {"name": "x"},
            headers={**two.headers, "If-Match": '"v1"'},
        )  # fmt: skip
        assert patch.status_code == 404
    borrowed = await deals.client.post(
        f"{API}/deals",
        json={"title": "Mine now", "client_id": client["id"], "value": "1.00", "currency": "EUR"},
        headers=two.headers,
    )
    assert borrowed.status_code == 404
    assert (await deals.client.get(f"{API}/clients/{client['id']}", headers=one.headers)).is_success


async def test_agent_lists_only_own_records(deals: Deals) -> None:
    admin, one, two = (
        await deals.user("admin"),
        await deals.user("agent"),
        await deals.user("agent"),
    )
    theirs = await deals.create_client(one.headers, name="Theirs")
    await deals.create_deal(one.headers, theirs["id"], title="Their deal")
    mine = await deals.create_client(two.headers, name="Mine")
    await deals.create_deal(two.headers, mine["id"], title="My deal")
    for path, field, own in (("clients", "name", "Mine"), ("deals", "title", "My deal")):
        listed = await deals.client.get(f"{API}/{path}", headers=two.headers)
        assert [i[field] for i in listed.json()["items"]] == [own]
        filtered = await deals.client.get(
            f"{API}/{path}", params={"owner": str(one.id)}, headers=two.headers
        )
        assert filtered.json()["items"] == []
        everyone = await deals.client.get(f"{API}/{path}", headers=admin.headers)
        assert len(everyone.json()["items"]) == 2


async def test_exports_honour_visibility(deals: Deals) -> None:
    admin = await deals.user("admin")
    role = {"name": "exporting-agent", "permissions": ["deals:read", "deals:write", "deals:export"]}
    created = await deals.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    assert created.status_code == 201, created.text
    exporter, other = await deals.user("exporting-agent"), await deals.user("agent")
    mine = await deals.create_client(exporter.headers, name="Mine")
    await deals.create_deal(exporter.headers, mine["id"], title="My deal")
    theirs = await deals.create_client(other.headers, name="Theirs")
    await deals.create_deal(other.headers, theirs["id"], title="Their deal")
    for path, field, own in (("clients", "name", "Mine"), ("deals", "title", "My deal")):
        response = await deals.client.get(f"{API}/{path}/export", headers=exporter.headers)
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r[field] for r in rows] == [own]


async def test_a_deal_export_names_only_clients_the_exporter_may_see(deals: Deals) -> None:
    admin, manager = await deals.user("admin"), await deals.user("manager")
    role = {"name": "exporting-agent", "permissions": ["deals:read", "deals:write", "deals:export"]}
    created = await deals.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    assert created.status_code == 201, created.text
    exporter, other = await deals.user("exporting-agent"), await deals.user("agent")
    # a deal on a client its owner cannot see: written before the rule that a deal's owner
    # sees its client (a client handed over now takes its previous agent's deals along)
    client = await make_client(deals.app, other.id, name="Their client")
    deal = {"id": str((await make_deal(deals.app, client, owner_id=exporter.id)).id)}
    theirs = {"id": str(client.id)}
    url = f"{API}/clients/{theirs['id']}"
    assert (await deals.client.get(url, headers=exporter.headers)).status_code == 404
    response = await deals.client.get(f"{API}/deals/export", headers=exporter.headers)
    assert response.status_code == 200
    (row,) = csv.DictReader(io.StringIO(response.text))
    assert row["id"] == deal["id"] and row["client_id"] == theirs["id"]
    assert row["client_name"] == ""
    seen = await deals.client.get(f"{API}/deals/export", headers=manager.headers)
    assert "Their client" in seen.text
