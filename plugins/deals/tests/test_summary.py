"""The pipeline summary: per stage and currency (and owner), only the deals the caller sees."""

from __future__ import annotations

from typing import Any

from deals_kit import API, Deals


def _stage(summary: dict[str, Any], name: str) -> dict[str, Any]:
    stage: dict[str, Any] = next(s for s in summary["stages"] if s["name"] == name)
    return stage


async def test_summary_per_stage_and_currency(deals: Deals) -> None:
    admin, agent = await deals.user("admin"), await deals.user("agent")
    pipeline = await deals.pipeline(admin.headers)
    lead, proposal, won = (deals.stage(pipeline, n)["id"] for n in ("Lead", "Proposal", "Won"))
    mine = await deals.create_client(admin.headers)
    theirs = await deals.create_client(agent.headers)
    await deals.create_deal(admin.headers, mine["id"], value="100.00", stage_id=lead)
    await deals.create_deal(admin.headers, mine["id"], value="50.01", stage_id=lead)
    await deals.create_deal(admin.headers, mine["id"], value="10.00", currency="USD", stage_id=lead)
    await deals.create_deal(admin.headers, mine["id"], value="0.01", stage_id=proposal)
    await deals.create_deal(agent.headers, theirs["id"], value="1000", currency="JPY", stage_id=won)
    await deals.create_deal(agent.headers, theirs["id"], value="20.00", stage_id=lead)

    url = f"{API}/pipelines/{pipeline['id']}/summary"
    summary = (await deals.client.get(url, headers=admin.headers)).json()
    assert summary["count"] == 6
    assert _stage(summary, "Lead")["count"] == 4
    assert _stage(summary, "Lead")["totals"] == [
        {"currency": "EUR", "value": "170.01", "forecast": "17.00"},
        {"currency": "USD", "value": "10.00", "forecast": "1.00"},
    ]
    assert _stage(summary, "Proposal")["totals"] == [
        {"currency": "EUR", "value": "0.01", "forecast": "0.01"}
    ]
    assert _stage(summary, "Won")["totals"] == [
        {"currency": "JPY", "value": "1000", "forecast": "1000"}
    ]
    negotiation = _stage(summary, "Negotiation")
    assert (negotiation["count"], negotiation["totals"]) == (0, [])
    assert summary["totals"] == [
        {"currency": "EUR", "value": "170.02", "forecast": "17.01"},
        {"currency": "JPY", "value": "1000", "forecast": "1000"},
        {"currency": "USD", "value": "10.00", "forecast": "1.00"},
    ]
    assert "owners" not in _stage(summary, "Lead") or _stage(summary, "Lead")["owners"] is None


async def test_summary_by_owner_and_agent_sees_only_own_deals(deals: Deals) -> None:
    admin, agent = await deals.user("admin"), await deals.user("agent")
    pipeline = await deals.pipeline(admin.headers)
    mine = await deals.create_client(admin.headers)
    theirs = await deals.create_client(agent.headers)
    await deals.create_deal(admin.headers, mine["id"], value="100.00")
    await deals.create_deal(agent.headers, theirs["id"], value="30.00")
    url = f"{API}/pipelines/{pipeline['id']}/summary"
    by_owner = await deals.client.get(url, params={"by_owner": "true"}, headers=admin.headers)
    owners = _stage(by_owner.json(), "Lead")["owners"]
    assert {(o["owner_id"], o["count"], o["totals"][0]["value"]) for o in owners} == {
        (str(admin.id), 1, "100.00"),
        (str(agent.id), 1, "30.00"),
    }
    own = (await deals.client.get(url, params={"by_owner": "true"}, headers=agent.headers)).json()
    assert own["count"] == 1
    assert _stage(own, "Lead")["totals"] == [
        {"currency": "EUR", "value": "30.00", "forecast": "3.00"}
    ]
    assert [o["owner_id"] for o in _stage(own, "Lead")["owners"]] == [str(agent.id)]


async def test_summary_of_unknown_pipeline_is_404(deals: Deals) -> None:
    admin = await deals.user("admin")
    url = f"{API}/pipelines/00000000-0000-0000-0000-000000000000/summary"
    assert (await deals.client.get(url, headers=admin.headers)).status_code == 404
