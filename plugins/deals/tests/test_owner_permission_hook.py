"""Who may own a record honours ``crm2_check_permission``: a plugin that denies a user
``deals:write`` makes them no owner, as it makes them no writer.

The owner check read the user's role grants only, so a user every write route
refused (403) was still accepted as the owner of a client, deal or policy that
someone else created or handed over, in the API, the CSV import and a user's
hand-over alike.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Client
from deals_kit import API, Deals, seed_defaults
from factories import get_row, make_client

from crm2_core.testing import Crm2TestApp, PermissionVotes

NOT_PERMITTED = "urn:crm2:problem:owner-not-permitted"


async def _app(crm2_app_factory: Any) -> tuple[Deals, PermissionVotes]:
    rule = PermissionVotes("deals:write", depends=("deals",))  # suspended users may not write
    app: Crm2TestApp = await crm2_app_factory(plugins=["deals", rule.name], extra_plugins=(rule,))
    await seed_defaults(app)
    return Deals(app), rule


def _refused(response: Any) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == NOT_PERMITTED, response.text


async def test_a_user_a_hook_denies_writing_owns_no_new_record(crm2_app_factory: Any) -> None:
    deals, rule = await _app(crm2_app_factory)
    manager, suspended = await deals.user("manager"), await deals.user("agent")
    rule.deny(suspended.id)
    own = await deals.client.post(
        f"{API}/clients", json={"kind": "person", "name": "Mine"}, headers=suspended.headers
    )
    assert own.status_code == 403, own.text  # the route's check: the hook denies it

    given = await deals.client.post(
        f"{API}/clients",
        json={"kind": "person", "name": "Given", "owner_id": str(suspended.id)},
        headers=manager.headers,
    )
    _refused(given)
    client = await deals.create_client(manager.headers)
    body = {"title": "Given", "client_id": client["id"], "owner_id": str(suspended.id)}
    _refused(await deals.client.post(f"{API}/deals", json=body, headers=manager.headers))


async def test_a_hand_over_to_a_user_a_hook_denies_writing_is_refused(
    crm2_app_factory: Any,
) -> None:
    deals, rule = await _app(crm2_app_factory)
    manager, agent, suspended = (
        await deals.user("manager"),
        await deals.user("agent"),
        await deals.user("agent"),
    )
    rule.deny(suspended.id)
    client = await make_client(deals.app, agent.id, emails=[])
    etag = (await deals.client.get(f"{API}/clients/{client.id}", headers=manager.headers)).headers[
        "etag"
    ]
    patched = await deals.client.patch(
        f"{API}/clients/{client.id}",
        json={"owner_id": str(suspended.id)},
        headers={**manager.headers, "If-Match": etag},
    )
    _refused(patched)

    email = f"c-{uuid.uuid4().hex[:8]}@example.com"
    imported = await deals.client.post(
        f"{API}/clients",
        json={"kind": "person", "name": "Imported", "emails": [email], "owner_id": str(agent.id)},
        headers=manager.headers,
    )
    assert imported.status_code == 201, imported.text
    content = f"name,emails,owner_email\nImported,{email},{suspended.email}\n"
    files = {"file": ("clients.csv", content.encode(), "text/csv")}
    answer = await deals.client.post(
        f"{API}/clients/import", params={"partial": "true"}, files=files, headers=manager.headers
    )
    assert answer.status_code == 200, answer.text
    assert [e["row"] for e in answer.json()["errors"]] == [2], answer.text
    for row_id in (client.id, uuid.UUID(imported.json()["id"])):
        assert (await get_row(deals.app, Client, row_id)).owner_id == agent.id
