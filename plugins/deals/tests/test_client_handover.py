"""Handing a client to another owner takes the previous owner's deals and policies on it
along, unless the previous owner still sees the client (``deals:all_records``).

A PATCH of a client's ``owner_id`` used to leave the previous agent owning deals and
policies on a client that answered them 404 (a deal's owner must see its client).
"""

from __future__ import annotations

from typing import Any

from crm2_deals.models import Activity, Client, Deal, Policy
from deals_kit import API, Deals
from factories import get_row, make_activity, make_client, make_deal, make_policy

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


async def _hand_over(deals: Deals, headers: dict[str, str], client: Client, to: Any) -> Any:
    etag = (await deals.client.get(f"{API}/clients/{client.id}", headers=headers)).headers["etag"]
    return await deals.client.patch(
        f"{API}/clients/{client.id}",
        json={"owner_id": str(to)},
        headers={**headers, "If-Match": etag},
    )


async def test_an_agents_deals_and_policies_follow_their_client(deals: Deals) -> None:
    manager = await deals.user("manager")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, leaving.id)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client, deal_id=deal.id)
    managers_deal = await make_deal(deals.app, client, owner_id=manager.id)
    other_client = await make_client(deals.app, leaving.id)
    elsewhere = await make_deal(deals.app, other_client)
    deal_note = await make_activity(deals.app, client, deal_id=deal.id)
    policy_note = await make_activity(deals.app, client, deal_id=deal.id, policy_id=policy.id)

    response = await _hand_over(deals, manager.headers, client, heir.id)

    assert response.status_code == 200, response.text
    for model, row in ((Deal, deal), (Policy, policy)):
        moved = await get_row(deals.app, model, row.id)
        assert (moved.owner_id, moved.version) == (heir.id, row.version + 1)
    for note in (deal_note, policy_note):
        assert (await get_row(deals.app, Activity, note.id)).owner_id == heir.id
    # a deal of someone who still sees the client, and the agent's other client's, stay
    assert (await get_row(deals.app, Deal, managers_deal.id)).owner_id == manager.id
    assert (await get_row(deals.app, Deal, elsewhere.id)).owner_id == leaving.id
    (deal_event,) = await deals.events("deals.deal.updated")
    (policy_event,) = await deals.events("deals.policy.updated")
    for event, row in ((deal_event, deal), (policy_event, policy)):
        assert event.subject == str(row.id)
        assert event.data["changed"] == ["owner_id"]
        assert event.data["owner_id"] == str(heir.id)
        assert event.data["previous_owner_id"] == str(leaving.id)
    # the heir opens them; the previous owner sees none of the client's records
    for path in (f"deals/{deal.id}", f"policies/{policy.id}"):
        got = await deals.client.get(f"{API}/{path}", headers=heir.headers)
        assert got.status_code == 200, got.text
        gone = await deals.client.get(f"{API}/{path}", headers=leaving.headers)
        assert gone.status_code == 404, gone.text


async def test_a_previous_owner_who_sees_every_client_keeps_their_deals(deals: Deals) -> None:
    admin, manager, agent = (
        await deals.user("admin"),
        await deals.user("manager"),
        await deals.user("agent"),
    )
    client = await make_client(deals.app, manager.id)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client)

    response = await _hand_over(deals, admin.headers, client, agent.id)

    assert response.status_code == 200, response.text
    assert (await get_row(deals.app, Deal, deal.id)).version == deal.version
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == manager.id
    assert (await get_row(deals.app, Policy, policy.id)).owner_id == manager.id
    assert await deals.events("deals.deal.updated") == []
    assert await deals.events("deals.policy.updated") == []


async def test_a_vetoed_deal_stops_the_client_hand_over(crm2_app_factory: Any) -> None:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "keepowners"], extra_plugins=(KeepsOwners(),)
    )
    deals = Deals(app)
    manager = await deals.user("manager")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, leaving.id)
    deal = await make_deal(deals.app, client)

    response = await _hand_over(deals, manager.headers, client, heir.id)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("deals-change-vetoed")
    assert (await get_row(deals.app, Client, client.id)).owner_id == leaving.id
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == leaving.id
