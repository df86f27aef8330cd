"""A deal's own timeline: its most recent stage moves, newest first."""

from __future__ import annotations

from datetime import timedelta

from crm2_deals.models import Stage, StageMove
from crm2_deals.service.deals import TIMELINE_LIMIT
from deals_kit import API, Deals
from factories import make_client, make_deal, rows

from crm2_core.api import utcnow


async def test_a_long_lived_deals_timeline_shows_its_latest_moves(deals: Deals) -> None:
    admin = await deals.user("admin")
    deal = await make_deal(deals.app, await make_client(deals.app, admin.id))
    stages = {s.name: s.id for s in await rows(deals.app, Stage)}
    start = utcnow() - timedelta(days=400)
    moves = [
        StageMove(deal_id=deal.id, to_stage_id=stages["Lead"], moved_at=start + timedelta(hours=i))
        for i in range(TIMELINE_LIMIT + 5)
    ]
    moves.append(StageMove(deal_id=deal.id, to_stage_id=stages["Won"], moved_at=utcnow()))
    async with deals.app.context.session_factory() as session:
        session.add_all(moves)
        await session.commit()
    response = await deals.client.get(f"{API}/deals/{deal.id}/timeline", headers=admin.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == TIMELINE_LIMIT
    assert items[0]["title"] == "Moved to Won"
    newest = sorted(moves, key=lambda m: m.moved_at, reverse=True)[:TIMELINE_LIMIT]
    assert [i["at"] for i in items] == [
        m.moved_at.isoformat().replace("+00:00", "Z") for m in newest
    ]
