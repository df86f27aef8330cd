"""Stage moves: pipeline check, lost reasons, closing and reopening, history, activity, events."""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Activity
from deals_kit import API, Deals, User
from sqlalchemy import select


async def _setup(deals: Deals) -> tuple[User, dict[str, Any], dict[str, Any]]:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"], value="1000.00")
    return admin, await deals.pipeline(admin.headers), deal


async def _move(deals: Deals, user: User, deal: dict[str, Any], **body: Any) -> Any:
    headers = {**user.headers, **body.pop("headers", {})}
    return await deals.client.post(f"{API}/deals/{deal['id']}/move", json=body, headers=headers)


async def test_move_records_history_activity_and_event(deals: Deals) -> None:
    admin, pipeline, deal = await _setup(deals)
    proposal = deals.stage(pipeline, "Proposal")
    response = await _move(deals, admin, deal, stage_id=proposal["id"])
    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["stage_id"], moved["status"]) == (proposal["id"], "open")
    assert response.headers["etag"] == '"v2"'
    assert moved["stage_entered_at"] >= deal["stage_entered_at"]

    history = await deals.client.get(f"{API}/deals/{deal['id']}/history", headers=admin.headers)
    steps = history.json()["items"]
    assert [(s["from_stage_id"], s["to_stage_id"]) for s in steps] == [
        (None, deal["stage_id"]),
        (deal["stage_id"], proposal["id"]),
    ]
    assert steps[1]["moved_by"] == str(admin.id) and steps[1]["seconds_in_previous"] >= 0

    async with deals.app.context.session_factory() as session:
        stmt = select(Activity).where(Activity.deal_id == uuid.UUID(deal["id"]))
        activities = list((await session.execute(stmt)).scalars())
    assert [(a.kind, a.subject) for a in activities] == [("system", "Moved from Lead to Proposal")]
    (event,) = await deals.events("deals.deal.stage_changed")
    assert event.subject == deal["id"]
    assert (event.data["from_stage_id"], event.data["to_stage_id"]) == (
        deal["stage_id"],
        proposal["id"],
    )


async def test_won_closes_and_moving_back_reopens(deals: Deals) -> None:
    admin, pipeline, deal = await _setup(deals)
    won = (await _move(deals, admin, deal, stage_id=deals.stage(pipeline, "Won")["id"])).json()
    assert won["status"] == "won" and won["closed_at"] is not None
    (event,) = await deals.events("deals.deal.won")
    assert (event.data["value"], event.data["currency"]) == ("1000.00", "EUR")
    back = (await _move(deals, admin, deal, stage_id=deal["stage_id"])).json()
    assert back["status"] == "open" and back["closed_at"] is None


async def test_lost_requires_a_reason(deals: Deals) -> None:
    admin, pipeline, deal = await _setup(deals)
    lost_stage = deals.stage(pipeline, "Lost")["id"]
    missing = await _move(deals, admin, deal, stage_id=lost_stage)
    assert missing.status_code == 422
    assert missing.json()["type"].endswith("deals-lost-reason-required")
    blank = await _move(deals, admin, deal, stage_id=lost_stage, lost_reason="  ")
    assert blank.status_code == 422
    unknown = await _move(deals, admin, deal, stage_id=lost_stage, lost_reason_id=str(uuid.uuid4()))
    assert unknown.status_code == 422
    reasons = (await deals.client.get(f"{API}/lost-reasons", headers=admin.headers)).json()
    price = next(r for r in reasons["items"] if r["name"] == "Price")
    lost = await _move(deals, admin, deal, stage_id=lost_stage, lost_reason_id=price["id"])
    assert lost.status_code == 200
    body = lost.json()
    assert (body["status"], body["lost_reason"], body["lost_reason_id"]) == (
        "lost",
        "Price",
        price["id"],
    )
    assert body["closed_at"] is not None
    (event,) = await deals.events("deals.deal.lost")
    assert event.data["lost_reason"] == "Price"
    reopened = (await _move(deals, admin, deal, stage_id=deal["stage_id"])).json()
    assert (reopened["lost_reason"], reopened["lost_reason_id"]) == (None, None)


async def test_free_text_lost_reason(deals: Deals) -> None:
    admin, pipeline, deal = await _setup(deals)
    lost_stage = deals.stage(pipeline, "Lost")["id"]
    lost = await _move(deals, admin, deal, stage_id=lost_stage, lost_reason="Chose a cousin")
    assert lost.json()["lost_reason"] == "Chose a cousin"


async def test_move_to_another_pipelines_stage_is_422(deals: Deals) -> None:
    admin, _, deal = await _setup(deals)
    renewals = await deals.pipeline(admin.headers, "Renewals")
    response = await _move(deals, admin, deal, stage_id=deals.stage(renewals, "Quoted")["id"])
    assert response.status_code == 422
    assert response.json()["type"].endswith("deals-stage-not-in-pipeline")
    assert (await _move(deals, admin, deal, stage_id=str(uuid.uuid4()))).status_code == 404


async def test_if_match_is_optional_but_checked_when_sent(deals: Deals) -> None:
    admin, pipeline, deal = await _setup(deals)
    qualified, proposal = deals.stage(pipeline, "Qualified"), deals.stage(pipeline, "Proposal")
    ok = await _move(deals, admin, deal, stage_id=qualified["id"], headers={"If-Match": '"v1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"v2"'
    stale = await _move(deals, admin, deal, stage_id=proposal["id"], headers={"If-Match": '"v1"'})
    assert stale.status_code == 412
    assert (await _move(deals, admin, deal, stage_id=proposal["id"])).status_code == 200


async def test_move_to_the_current_stage_changes_nothing(deals: Deals) -> None:
    admin, _, deal = await _setup(deals)
    same = await _move(deals, admin, deal, stage_id=deal["stage_id"])
    assert same.status_code == 200 and same.headers["etag"] == '"v1"'
    assert await deals.events("deals.deal.stage_changed") == []


async def test_another_agents_deal_cannot_be_moved_or_traced(deals: Deals) -> None:
    owner, other = await deals.user("agent"), await deals.user("agent")
    client = await deals.create_client(owner.headers)
    deal = await deals.create_deal(owner.headers, client["id"])
    pipeline = await deals.pipeline(owner.headers)
    moved = await _move(deals, other, deal, stage_id=deals.stage(pipeline, "Proposal")["id"])
    assert moved.status_code == 404
    history = await deals.client.get(f"{API}/deals/{deal['id']}/history", headers=other.headers)
    assert history.status_code == 404


async def test_stage_changed_carries_the_deals_new_version(deals: Deals) -> None:
    """A board moves the card on the event and keeps its ETag without reading it again."""
    admin, pipeline, deal = await _setup(deals)
    for name in ("Proposal", "Won"):
        response = await _move(deals, admin, deal, stage_id=deals.stage(pipeline, name)["id"])
        assert response.status_code == 200, response.text
    events = await deals.events("deals.deal.stage_changed")
    assert [e.data["version"] for e in events] == [2, 3]
    assert response.headers["etag"] == f'"v{events[-1].data["version"]}"'
