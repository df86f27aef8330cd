"""Plugins extend deals through its own hooks: veto a change, add timeline entries and fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from deals_kit import API, Deals

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, Principal, hookimpl


class BigDealsNeedAManager:
    """A third-party rule: only a manager may win a deal worth 10,000 or more."""

    manifest = PluginManifest(name="bigdeals", title="Big deals (test only)", depends=("deals",))

    @hookimpl
    def crm2_deals_validate_change(self, change: Any, principal: Principal) -> str | None:
        big = float(change.after["value"]) >= 10_000 and "manager" not in principal.roles
        if change.action == "move" and change.to_stage["kind"] == "won" and big:
            return "a deal of 10,000 or more is won by a manager"
        shouting = "title" in change.changed and change.after["title"].isupper()
        if change.action == "update" and shouting:
            return "no shouting in titles"
        return None

    @hookimpl
    def crm2_deals_timeline(self, deal: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        return [{"at": datetime(2020, 1, 1, tzinfo=UTC), "title": f"Checked {deal['title']}"}]

    @hookimpl
    async def crm2_deals_extra_fields(self, deal: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"big": float(deal["value"]) >= 10_000}


async def _app(crm2_app_factory: Any) -> Deals:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "bigdeals"], extra_plugins=(BigDealsNeedAManager(),)
    )
    return Deals(app)


async def test_a_plugin_vetoes_a_stage_move_with_a_422_naming_it(crm2_app_factory: Any) -> None:
    deals = await _app(crm2_app_factory)
    agent = await deals.user("agent")
    client = await deals.create_client(agent.headers)
    deal = await deals.create_deal(agent.headers, client["id"], value="25000.00")
    won = deals.stage(await deals.pipeline(agent.headers), "Won")

    response = await deals.client.post(
        f"{API}/deals/{deal['id']}/move", json={"stage_id": won["id"]}, headers=agent.headers
    )

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("deals-change-vetoed")
    assert (
        "bigdeals refused this change: a deal of 10,000 or more is won by a manager"
        in (problem["detail"])
    )
    again = await deals.client.get(f"{API}/deals/{deal['id']}", headers=agent.headers)
    assert again.json()["status"] == "open"  # nothing changed


async def test_a_plugin_vetoes_an_update_and_allows_another(crm2_app_factory: Any) -> None:
    deals = await _app(crm2_app_factory)
    agent = await deals.user("agent")
    client = await deals.create_client(agent.headers)
    deal = await deals.create_deal(agent.headers, client["id"])
    read = await deals.client.get(f"{API}/deals/{deal['id']}", headers=agent.headers)
    etag = {"If-Match": read.headers["etag"]}

    refused = await deals.client.patch(
        f"{API}/deals/{deal['id']}", json={"title": "HUGE"}, headers=agent.headers | etag
    )
    allowed = await deals.client.patch(
        f"{API}/deals/{deal['id']}", json={"title": "Fleet"}, headers=agent.headers | etag
    )

    assert refused.status_code == 422 and "no shouting" in refused.json()["detail"]
    assert allowed.status_code == 200, allowed.text


async def test_timeline_and_extra_fields_carry_the_plugins_contributions(
    crm2_app_factory: Any,
) -> None:
    deals = await _app(crm2_app_factory)
    agent = await deals.user("agent")
    client = await deals.create_client(agent.headers)
    deal = await deals.create_deal(agent.headers, client["id"], value="12000.00")

    timeline = await deals.client.get(f"{API}/deals/{deal['id']}/timeline", headers=agent.headers)
    extra = await deals.client.get(f"{API}/deals/{deal['id']}/extra", headers=agent.headers)

    assert timeline.status_code == 200, timeline.text
    items = timeline.json()["items"]
    assert [(i["source"], i["kind"]) for i in items] == [("deals", "stage_move"), ("bigdeals", "")]
    assert items[1]["title"] == "Checked Deal"
    assert extra.json() == {"fields": {"bigdeals": {"big": True}}}


async def test_another_agents_deal_timeline_is_404(crm2_app_factory: Any) -> None:
    deals = await _app(crm2_app_factory)
    owner, other = await deals.user("agent"), await deals.user("agent")
    client = await deals.create_client(owner.headers)
    deal = await deals.create_deal(owner.headers, client["id"])
    for tail in ("timeline", "extra"):
        response = await deals.client.get(f"{API}/deals/{deal['id']}/{tail}", headers=other.headers)
        assert response.status_code == 404
