"""Tasks next to deals: deals' events drive the shipped rules, links resolve through deals.

Tasks imports nothing of deals: the events arrive through the bus and the links
are checked with ``crm2_resolve_entity``, with the caller's visibility.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from crm2_tasks.clock import set_clock
from tasks_kit import API, Tasks, User, seed_shipped_rules

DEALS = "/api/v1/deals"
MONDAY_10 = datetime(2026, 3, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
async def both(crm2_app_factory: Any) -> Tasks:
    app = await crm2_app_factory(plugins=["deals", "tasks"])
    await seed_shipped_rules(app)
    set_clock(app.context, lambda: MONDAY_10)
    return Tasks(app)


async def a_deal(tasks: Tasks, admin: User, owner: User) -> dict[str, Any]:
    client = tasks.client
    pipelines = (await client.get(f"{DEALS}/pipelines", headers=admin.headers)).json()["items"]
    if not pipelines:
        body = {"name": "Sales", "is_default": True, "stages": [{"name": "New", "probability": 10}]}
        made = await client.post(f"{DEALS}/pipelines", json=body, headers=admin.headers)
        assert made.status_code == 201, made.text
    person = await client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna Berg"}, headers=owner.headers
    )
    assert person.status_code == 201, person.text
    deal = await client.post(
        f"{DEALS}/deals",
        json={"title": "Fleet cover", "client_id": person.json()["id"], "value": "900.00"},
        headers=owner.headers,
    )
    assert deal.status_code == 201, deal.text
    result: dict[str, Any] = deal.json()
    return result


async def enable(tasks: Tasks, admin: User, key: str) -> dict[str, Any]:
    rules = (await tasks.client.get(f"{API}/rules", headers=admin.headers)).json()["items"]
    rule = next(r for r in rules if r["builtin_key"] == key)
    assert rule["active"] is False  # shipped switched off
    headers = {**admin.headers, "If-Match": f'"v{rule["version"]}"'}
    on = await tasks.client.patch(
        f"{API}/rules/{rule['id']}", json={"enabled": True}, headers=headers
    )
    assert on.status_code == 200 and on.json()["active"] is True
    result: dict[str, Any] = on.json()
    return result


async def test_a_new_deal_gets_a_follow_up_task_for_its_owner(both: Tasks) -> None:
    admin, agent = await both.user("admin"), await both.user("agent")
    await enable(both, admin, "deals-follow-up")
    deal = await a_deal(both, admin, agent)
    await both.app.settle_events()
    mine = (await both.client.get(f"{API}/views/mine", headers=agent.headers)).json()["items"]
    assert len(mine) == 1
    (task,) = mine
    assert task["title"] == "Follow up: Fleet cover"
    assert task["link"] == {"kind": "deals.deal", "id": deal["id"]}
    assert task["due_at"] == "2026-03-24T10:00:00Z"  # one business day
    await both.app.settle_events()  # nothing more arrives later
    again = (await both.client.get(f"{API}/views/mine", headers=agent.headers)).json()["items"]
    assert len(again) == 1


async def test_without_the_rule_switched_on_deals_events_create_nothing(both: Tasks) -> None:
    admin, agent = await both.user("admin"), await both.user("agent")
    await a_deal(both, admin, agent)
    await both.app.settle_events()
    assert (await both.client.get(f"{API}/tasks", headers=admin.headers)).json()["items"] == []


async def test_links_to_deals_records_follow_the_callers_visibility(both: Tasks) -> None:
    admin, owner, stranger = (
        await both.user("admin"),
        await both.user("agent"),
        await both.user("agent"),
    )
    deal = await a_deal(both, admin, owner)
    link = {"kind": "deals.deal", "id": deal["id"]}
    mine = await both.client.post(
        f"{API}/tasks", json={"title": "Call", "link": link}, headers=owner.headers
    )
    assert mine.status_code == 201, mine.text
    theirs = await both.client.post(
        f"{API}/tasks", json={"title": "Peek", "link": link}, headers=stranger.headers
    )
    assert theirs.status_code == 422  # the same answer as for a deal that does not exist
    by_link = await both.client.get(
        f"{API}/tasks",
        params={"link_kind": "deals.deal", "link_id": deal["id"]},
        headers=admin.headers,
    )
    assert [t["id"] for t in by_link.json()["items"]] == [mine.json()["id"]]


async def test_a_deal_shows_its_linked_tasks_through_deals_hooks(both: Tasks) -> None:
    admin, agent = await both.user("admin"), await both.user("agent")
    deal = await a_deal(both, admin, agent)
    link = {"kind": "deals.deal", "id": deal["id"]}
    created = await both.client.post(
        f"{API}/tasks", json={"title": "Call back", "link": link}, headers=agent.headers
    )
    assert created.status_code == 201, created.text

    extra = await both.client.get(f"/api/v1/deals/deals/{deal['id']}/extra", headers=agent.headers)
    timeline = await both.client.get(
        f"/api/v1/deals/deals/{deal['id']}/timeline", headers=agent.headers
    )

    assert extra.json()["fields"]["tasks"] == {"open_tasks": 1}
    entries = [e for e in timeline.json()["items"] if e["source"] == "tasks"]
    assert [e["title"] for e in entries] == ["Task: Call back (todo)"]
    assert entries[0]["link"] == {"kind": "tasks.task", "id": created.json()["id"]}


async def test_a_deal_shows_no_tasks_to_someone_without_tasks_read(both: Tasks) -> None:
    admin = await both.user("admin")
    role = {
        "name": "dealer",
        "permissions": ["deals:read", "deals:write", "tasks:read", "tasks:write"],
    }
    made = await both.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    assert made.status_code == 201, made.text
    dealer = await both.user("dealer")
    deal = await a_deal(both, admin, dealer)
    link = {"kind": "deals.deal", "id": deal["id"]}
    created = await both.client.post(
        f"{API}/tasks", json={"title": "secret plan", "link": link}, headers=dealer.headers
    )
    assert created.status_code == 201, created.text
    taken = await both.client.patch(
        "/api/v1/auth/roles/dealer",
        json={"permissions": ["deals:read", "deals:write"]},
        headers={**admin.headers, "If-Match": made.headers["ETag"]},
    )
    assert taken.status_code == 200, taken.text

    extra = await both.client.get(f"{DEALS}/deals/{deal['id']}/extra", headers=dealer.headers)
    timeline = await both.client.get(f"{DEALS}/deals/{deal['id']}/timeline", headers=dealer.headers)

    assert extra.status_code == 200 and timeline.status_code == 200, timeline.text
    assert "tasks" not in extra.json()["fields"]
    assert [e for e in timeline.json()["items"] if e["source"] == "tasks"] == []


async def _repeating_call(both: Tasks, owner: User, deal: dict[str, Any]) -> dict[str, Any]:
    body = {
        "title": "Weekly call",
        "due_at": "2026-03-24T09:00:00Z",
        "recurrence": "FREQ=WEEKLY",
        "timezone": "UTC",
        "link": {"kind": "deals.deal", "id": deal["id"]},
    }
    made = await both.client.post(f"{API}/tasks", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


async def _complete_and_next(both: Tasks, user: User, task: dict[str, Any]) -> dict[str, Any]:
    done = await both.client.post(f"{API}/tasks/{task['id']}/complete", headers=user.headers)
    assert done.status_code == 200, done.text
    next_id = done.headers["Link"].split(">")[0].split("/")[-1]
    nxt = await both.get(user, next_id)
    assert nxt.status_code == 200, nxt.text
    result: dict[str, Any] = nxt.json()
    return result


async def test_a_later_occurrence_keeps_a_link_its_assignee_can_see(both: Tasks) -> None:
    admin, owner = await both.user("admin"), await both.user("agent")
    deal = await a_deal(both, admin, owner)
    first = await _repeating_call(both, owner, deal)
    nxt = await _complete_and_next(both, owner, first)
    assert nxt["link"] == {"kind": "deals.deal", "id": deal["id"]}
    created = (await both.events("tasks.task.created"))[-1]
    assert created.data["link_dropped"] is None


async def test_a_later_occurrence_drops_a_link_its_assignee_cannot_see(both: Tasks) -> None:
    admin, owner, other = (
        await both.user("admin"),
        await both.user("agent"),
        await both.user("agent"),
    )
    deal = await a_deal(both, admin, owner)
    first = await _repeating_call(both, owner, deal)
    given = await both.client.post(
        f"{API}/tasks/{first['id']}/assign",
        json={"assignee_id": str(other.id)},
        headers=owner.headers,
    )
    assert given.status_code == 200, given.text
    nxt = await _complete_and_next(both, other, first)
    assert nxt["assignee_id"] == str(other.id)
    assert nxt["link"] is None  # no deal id handed to someone who may not see the deal
    created = (await both.events("tasks.task.created"))[-1]
    assert created.subject == nxt["id"]
    assert created.data["link_dropped"] == {
        "kind": "deals.deal",
        "id": deal["id"],
        "reason": "gone_or_not_visible",
    }
    # the series keeps its link: an occurrence whose assignee may see the deal has it again
    back = await both.client.post(
        f"{API}/tasks/{nxt['id']}/assign",
        json={"assignee_id": str(owner.id)},
        headers=other.headers,
    )
    assert back.status_code == 200, back.text
    third = await _complete_and_next(both, owner, nxt)
    assert third["link"] == {"kind": "deals.deal", "id": deal["id"]}


async def test_a_later_occurrence_drops_a_link_to_a_deleted_deal(both: Tasks) -> None:
    admin, owner = await both.user("admin"), await both.user("agent")
    deal = await a_deal(both, admin, owner)
    first = await _repeating_call(both, owner, deal)
    gone = await both.client.delete(f"{DEALS}/deals/{deal['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    nxt = await _complete_and_next(both, owner, first)
    assert nxt["link"] is None
    created = (await both.events("tasks.task.created"))[-1]
    assert created.data["link_dropped"]["reason"] == "gone_or_not_visible"


async def test_a_rule_may_link_the_record_types_deals_provides_and_no_other(both: Tasks) -> None:
    admin = await both.user("admin")

    async def save(name: str, kind: str) -> Any:
        action = {"title": "Call", "link": {"kind": kind, "id": "{subject}"}}
        body = {"name": name, "on": "deals.deal.created", "create_task": action}
        return await both.client.post(f"{API}/rules", json=body, headers=admin.headers)

    assert (await save("Deal", "deals.deal")).status_code == 201
    assert (await save("Client", "deals.client")).status_code == 201
    unknown = await save("Unknown", "deals.nothing")  # deals answers for no such type
    assert unknown.status_code == 422, unknown.text
    assert "'deals.nothing'" in unknown.json()["detail"]
