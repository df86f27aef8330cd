"""A CSV row's ``owner_email`` hands its client over as a PATCH of ``owner_id`` does: the
previous owner's deals and policies on it go along, each deal's change put to
``crm2_deals_validate_change`` first.

The import used to change only the client's owner (and its notes), leaving the
previous agent owning deals and policies on a client that answered them 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Activity, Client, Deal, Policy
from deals_kit import API, Deals, User, seed_defaults
from factories import get_row, make_activity, make_deal, make_policy

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, hookimpl


class KeepsOwners:
    """A third-party rule: no deal changes owner."""

    manifest = PluginManifest(
        name="keepowners", title="Keep owners (test only)", depends=("deals",)
    )

    @hookimpl
    def crm2_deals_validate_change(self, change: Any) -> str | None:
        return "deals keep their owner" if "owner_id" in change.changed else None


async def _import(deals: Deals, user: User, content: str, **params: str) -> Any:
    files = {"file": ("clients.csv", content.encode(), "text/csv")}
    return await deals.client.post(
        f"{API}/clients/import", params=params, files=files, headers=user.headers
    )


async def _agents_client(deals: Deals, manager: User, agent: User) -> Client:
    email = f"c-{uuid.uuid4().hex[:8]}@example.com"
    body = {"kind": "person", "name": "Handed", "emails": [email], "owner_id": str(agent.id)}
    created = await deals.client.post(f"{API}/clients", json=body, headers=manager.headers)
    assert created.status_code == 201, created.text
    return await get_row(deals.app, Client, uuid.UUID(created.json()["id"]))


async def test_an_imported_hand_over_takes_the_agents_deals_and_policies_along(
    deals: Deals,
) -> None:
    manager = await deals.user("manager")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await _agents_client(deals, manager, leaving)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client, deal_id=deal.id)
    note = await make_activity(deals.app, client, deal_id=deal.id)

    content = f"name,emails,owner_email\nHanded,{client.emails[0]},{heir.email}\n"
    response = await _import(deals, manager, content)

    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 1
    assert (await get_row(deals.app, Client, client.id)).owner_id == heir.id
    for model, row in ((Deal, deal), (Policy, policy)):
        moved = await get_row(deals.app, model, row.id)
        assert (moved.owner_id, moved.version) == (heir.id, row.version + 1)
    assert (await get_row(deals.app, Activity, note.id)).owner_id == heir.id
    (deal_event,) = await deals.events("deals.deal.updated")
    (policy_event,) = await deals.events("deals.policy.updated")
    for event, row in ((deal_event, deal), (policy_event, policy)):
        assert event.subject == str(row.id)
        assert event.data["changed"] == ["owner_id"]
        assert event.data["previous_owner_id"] == str(leaving.id)


async def test_a_vetoed_deal_refuses_the_rows_hand_over(crm2_app_factory: Any) -> None:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "keepowners"], extra_plugins=(KeepsOwners(),)
    )
    await seed_defaults(app)
    deals = Deals(app)
    manager = await deals.user("manager")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await _agents_client(deals, manager, leaving)
    deal = await make_deal(deals.app, client)
    content = f"name,emails,owner_email\nHanded,{client.emails[0]},{heir.email}\n"

    for params in ({}, {"partial": "true"}, {"dry_run": "true"}):
        response = await _import(deals, manager, content, **params)
        report = response.json().get("report", response.json())
        if not params:
            assert response.status_code == 422, response.text
            assert response.json()["type"] == "urn:crm2:problem:import-refused"
        else:
            assert response.status_code == 200, response.text
        assert [e["row"] for e in report["errors"]] == [2], report
        assert "keepowners refused" in report["errors"][0]["reason"], report
        assert (await get_row(deals.app, Client, client.id)).owner_id == leaving.id
        assert (await get_row(deals.app, Deal, deal.id)).owner_id == leaving.id
    assert await deals.events("deals.deal.updated") == []
