"""The client timeline: the client's, its deals' and its policies' activities, newest first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from deals_kit import API, Deals
from factories import make_activity, make_client, make_deal, make_policy

from crm2_core.api import utcnow


def timeline(client_id: Any) -> str:
    return f"{API}/clients/{client_id}/timeline"


async def read_all(deals: Deals, url: str, headers: dict[str, str], **params: Any) -> list[Any]:
    items: list[Any] = []
    query: dict[str, Any] = {"limit": 2, **params}
    while True:
        r = await deals.client.get(url, params=query, headers=headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if not r.json()["next_cursor"]:
            return items
        query["cursor"] = r.json()["next_cursor"]


async def test_timeline_gathers_deals_and_policies_newest_first(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client, status="draft")
    now = utcnow()
    same = now - timedelta(hours=5)
    rows = [
        await make_activity(deals.app, client, now - timedelta(days=2)),
        await make_activity(deals.app, client, same, deal_id=deal.id, kind="call"),
        await make_activity(deals.app, client, same, deal_id=deal.id, kind="meeting"),
        await make_activity(deals.app, client, now - timedelta(days=1), policy_id=policy.id),
    ]
    await make_activity(deals.app, await make_client(deals.app, admin.id), now)  # another client
    r = await deals.client.post(f"{API}/policies/{policy.id}/activate", headers=admin.headers)
    assert r.status_code == 200
    items = await read_all(deals, timeline(client.id), admin.headers)
    assert items[0]["subject"] == "Policy issued" and items[0]["policy_id"] == str(policy.id)
    tied = sorted((r for r in rows if r.occurred_at == same), key=lambda r: r.id, reverse=True)
    expected = [tied[0].id, tied[1].id, rows[3].id, rows[0].id]
    assert [i["id"] for i in items[1:]] == [str(i) for i in expected]
    assert len({i["id"] for i in items}) == len(items) == 5


async def test_timeline_filters_by_kind(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    await make_activity(deals.app, client, kind="call")
    await make_activity(deals.app, client, kind="system")
    items = await read_all(deals, timeline(client.id), admin.headers, kind="system")
    assert [i["kind"] for i in items] == ["system"]


async def test_agent_gets_404_on_another_agents_client_timeline(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    theirs = await make_client(deals.app, agent2.id)
    await make_activity(deals.app, theirs)
    r = await deals.client.get(timeline(theirs.id), headers=agent1.headers)
    assert r.status_code == 404
    r = await deals.client.get(timeline(theirs.id), headers=agent2.headers)
    assert len(r.json()["items"]) == 1


async def test_timeline_of_an_unknown_client_is_404(deals: Deals) -> None:
    admin = await deals.user("admin")
    r = await deals.client.get(
        timeline("6f1c1a52-0000-4000-8000-000000000000"), headers=admin.headers
    )
    assert r.status_code == 404


async def test_timeline_hides_entries_of_records_another_agent_owns(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, agent1.id)
    their_deal = await make_deal(deals.app, client, owner_id=agent2.id)
    mine = await make_activity(deals.app, client)
    await make_activity(deals.app, client, deal_id=their_deal.id, owner_id=agent2.id)
    items = await read_all(deals, timeline(client.id), agent1.headers)
    assert [i["id"] for i in items] == [str(mine.id)]
