"""Plugins extend deals through its own hooks: veto a change, add timeline entries and fields."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from deals_kit import API, Deals
from sqlalchemy import text

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import EventHandler, PluginManifest, Principal, hookimpl


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
        if change.changed == ("owner_id",) and big:
            return "a deal of 10,000 or more keeps its owner"
        if change.action == "create" and change.after["title"] == "Forbidden":
            assert change.to_stage is not None and change.to_stage["kind"] == "open"
            return "no forbidden deals"
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


async def test_a_plugin_vetoes_a_create_and_nothing_is_written(crm2_app_factory: Any) -> None:
    deals = await _app(crm2_app_factory)
    agent = await deals.user("agent")
    client = await deals.create_client(agent.headers)
    body = {"title": "Forbidden", "client_id": client["id"], "value": "1.00", "currency": "EUR"}

    response = await deals.client.post(f"{API}/deals", json=body, headers=agent.headers)

    assert response.status_code == 422, response.text
    assert "bigdeals refused this change: no forbidden deals" in response.json()["detail"]
    listed = await deals.client.get(f"{API}/deals", headers=agent.headers)
    assert listed.json()["items"] == []
    assert await deals.events("deals.deal.created") == []
    allowed = await deals.create_deal(agent.headers, client["id"], title="Allowed")
    assert allowed["title"] == "Allowed"


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


class AutoWin:
    """A third-party handler that wins every new deal through deals' own service."""

    manifest = PluginManifest(name="autowin", title="Auto-win (test only)", depends=("deals",))

    async def win(self, session: Any, event: Any, context: Any) -> None:
        from crm2_deals.models import Stage
        from crm2_deals.schemas.deals import DealMove
        from crm2_deals.service.deals import SYSTEM_PRINCIPAL, move_deal
        from sqlalchemy import select

        stmt = select(Stage).where(
            Stage.pipeline_id == uuid.UUID(event.data["pipeline_id"]),  # type: ignore[arg-type]
            Stage.kind == "won",  # type: ignore[arg-type]
        )
        won = (await session.execute(stmt)).scalars().first()
        move = DealMove(stage_id=won.id)
        await move_deal(
            session, SYSTEM_PRINCIPAL, uuid.UUID(event.subject), None, move, context=context
        )

    @hookimpl
    def crm2_event_handlers(self) -> Sequence[EventHandler]:
        return [EventHandler("win", ("deals.deal.created",), self.win, max_retries=0)]


async def test_a_handler_changing_a_deal_through_the_service_is_vetoed_too(
    crm2_app_factory: Any,
) -> None:
    """Not only REST: a handler's ``move_deal`` is put to the same veto hook."""
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "bigdeals", "autowin"],
        extra_plugins=(BigDealsNeedAManager(), AutoWin()),
    )
    deals = Deals(app)
    agent = await deals.user("agent")
    client = await deals.create_client(agent.headers)
    small = await deals.create_deal(agent.headers, client["id"], value="500.00")
    big = await deals.create_deal(agent.headers, client["id"], value="25000.00")
    await app.settle_events()

    async def status(deal: dict[str, Any]) -> str:
        got = await deals.client.get(f"{API}/deals/{deal['id']}", headers=agent.headers)
        return str(got.json()["status"])

    assert await status(small) == "won"  # the handler's move went through
    assert await status(big) == "open"  # vetoed: nothing written
    async with app.context.session_factory() as session:
        letters = (await session.execute(text("SELECT handler, error FROM core_dead_letter"))).all()
    assert [tuple(row) for row in letters] == [
        (
            "autowin.win",
            "ChangeVetoed: bigdeals refused this change: "
            "a deal of 10,000 or more is won by a manager",
        )
    ]


async def test_an_owner_hand_over_is_vetoed_like_any_deal_change(crm2_app_factory: Any) -> None:
    """``POST /auth/users/{id}/reassign`` moves deals in bulk: each move asks the hook first."""
    deals = await _app(crm2_app_factory)
    admin = await deals.user("admin")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await deals.create_client(leaving.headers)
    await deals.create_deal(leaving.headers, client["id"], value="500.00")
    big = await deals.create_deal(leaving.headers, client["id"], value="25000.00")
    url = f"/api/v1/auth/users/{leaving.id}/reassign"

    refused = await deals.client.post(url, json={"to": str(heir.id)}, headers=admin.headers)

    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("deals-change-vetoed")
    assert "keeps its owner" in refused.json()["detail"]
    kept = await deals.client.get(f"{API}/deals/{big['id']}", headers=admin.headers)
    assert kept.json()["owner_id"] == str(leaving.id)  # nothing moved, not even the client
    mine = await deals.client.get(f"{API}/clients/{client['id']}", headers=admin.headers)
    assert mine.json()["owner_id"] == str(leaving.id)
