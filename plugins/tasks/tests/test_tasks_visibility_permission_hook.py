"""Who sees every task honours ``crm2_check_permission``, as deals' rule does.

``tasks:all_records`` was read from the caller's roles alone (``TaskVisibility.of``):
a plugin that denied it a manager (a branch rule, a suspension) still let them list,
read, change, delete and export every task, resolve it as a link and follow it on
the ``tasks`` stream. A hook's ``True`` (or ``None``) leaves it to the roles: it
widens no one.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_tasks.visibility import can_see
from tasks_kit import API, Tasks, seed_shipped_rules
from test_tasks_with_deals import a_deal

from crm2_core.api import Envelope, resolve_entity
from crm2_core.testing import Crm2TestApp, PermissionVotes
from crm2_hookspecs import Principal

ALL_RECORDS = "tasks:all_records"


async def _app(crm2_app_factory: Any) -> tuple[Tasks, PermissionVotes]:
    rule = PermissionVotes(ALL_RECORDS, depends=("tasks",))  # a branch rule
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["tasks", rule.name], extra_plugins=(rule,), scheduler_enabled=False
    )
    await seed_shipped_rules(app)
    return Tasks(app), rule


def _principal(user_id: uuid.UUID, role: str, *permissions: str) -> Principal:
    return Principal(
        id=user_id,
        kind="user",
        roles=frozenset({role}),
        permissions=frozenset({"tasks:read", *permissions}),
    )


async def test_a_manager_a_hook_denies_all_records_sees_only_their_own_tasks(
    crm2_app_factory: Any,
) -> None:
    tasks, rule = await _app(crm2_app_factory)
    manager, agent = await tasks.user("manager"), await tasks.user("agent")
    rule.votes[manager.id] = False
    theirs = await tasks.create(agent, due_at="2020-01-01T00:00:00Z")
    mine = await tasks.create(manager, due_at="2020-01-01T00:00:00Z")
    h = manager.headers

    listed = await tasks.client.get(f"{API}/tasks", headers=h)
    assert [t["id"] for t in listed.json()["items"]] == [mine["id"]], listed.text
    overdue = await tasks.client.get(f"{API}/views/overdue", headers=h)
    assert [t["id"] for t in overdue.json()["items"]] == [mine["id"]], overdue.text
    exported = await tasks.client.get(f"{API}/tasks/export", headers=h)
    assert exported.status_code == 200, exported.text
    assert mine["id"] in exported.text and theirs["id"] not in exported.text
    tid = theirs["id"]
    calls = [
        ("GET", f"{API}/tasks/{tid}", None),
        ("GET", f"{API}/tasks/{tid}/sla", None),
        ("PATCH", f"{API}/tasks/{tid}", {"title": "mine now"}),
        ("POST", f"{API}/tasks/{tid}/complete", None),
        ("POST", f"{API}/tasks/{tid}/assign", {"assignee_id": str(manager.id)}),
        ("DELETE", f"{API}/tasks/{tid}", None),
    ]
    for method, url, body in calls:
        answer = await tasks.client.request(
            method, url, json=body, headers={**h, "If-Match": '"v1"'}
        )
        assert answer.status_code == 404, (method, url, answer.text)
    context = tasks.app.context
    confined = _principal(manager.id, "manager", ALL_RECORDS)
    assert await resolve_entity(context, "tasks.task", tid, confined) is None
    assert await resolve_entity(context, "tasks.task", mine["id"], confined) is not None

    rule.votes[manager.id] = True  # the hook decides per request; True leaves it to the roles
    assert (await tasks.get(manager, tid)).status_code == 200
    listed = await tasks.client.get(f"{API}/tasks", headers=h)
    assert {t["id"] for t in listed.json()["items"]} == {mine["id"], tid}
    assert await resolve_entity(context, "tasks.task", tid, confined) is not None


async def test_a_hook_that_says_yes_gives_an_agent_no_one_elses_tasks(
    crm2_app_factory: Any,
) -> None:
    tasks, rule = await _app(crm2_app_factory)
    agent, other = await tasks.user("agent"), await tasks.user("agent")
    rule.votes[agent.id] = True
    theirs = await tasks.create(other)
    assert (await tasks.get(agent, theirs["id"])).status_code == 404
    listed = await tasks.client.get(f"{API}/tasks", headers=agent.headers)
    assert listed.json()["items"] == []


async def test_the_stream_follows_the_hook(crm2_app_factory: Any) -> None:
    tasks, rule = await _app(crm2_app_factory)
    manager, agent = await tasks.user("manager"), await tasks.user("agent")
    stranger = await tasks.user("agent")
    await tasks.create(agent)
    (record,) = await tasks.events("tasks.task.created")
    envelope: Any = Envelope.from_record(record)
    context = tasks.app.context
    principal = _principal(manager.id, "manager", ALL_RECORDS)
    assert await can_see(principal, envelope, context)
    rule.votes[manager.id] = False
    assert not await can_see(principal, envelope, context)
    assert await can_see(_principal(agent.id, "agent"), envelope, context)
    rule.votes[stranger.id] = True  # a yes widens no one: another's event stays hidden
    assert not await can_see(_principal(stranger.id, "agent"), envelope, context)


async def test_a_deals_tasks_follow_the_hook(crm2_app_factory: Any) -> None:
    """deals' timeline and extra fields count only the tasks the hook lets the caller see."""
    rule = PermissionVotes(ALL_RECORDS, depends=("tasks",))
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "tasks", rule.name], extra_plugins=(rule,), scheduler_enabled=False
    )
    await seed_shipped_rules(app)
    tasks = Tasks(app)
    admin, manager, agent = (
        await tasks.user("admin"),
        await tasks.user("manager"),
        await tasks.user("agent"),
    )
    deal = await a_deal(tasks, admin, agent)
    await tasks.create(agent, title="Call back", link={"kind": "deals.deal", "id": deal["id"]})
    url = f"/api/v1/deals/deals/{deal['id']}"
    rule.votes[manager.id] = False
    extra = await tasks.client.get(f"{url}/extra", headers=manager.headers)
    assert extra.status_code == 200, extra.text
    assert extra.json()["fields"]["tasks"] == {"open_tasks": 0}
    timeline = await tasks.client.get(f"{url}/timeline", headers=manager.headers)
    assert timeline.status_code == 200, timeline.text
    assert [e for e in timeline.json()["items"] if e["source"] == "tasks"] == []
    rule.votes.clear()
    extra = await tasks.client.get(f"{url}/extra", headers=manager.headers)
    assert extra.json()["fields"]["tasks"] == {"open_tasks": 1}


async def test_a_deal_shows_no_tasks_to_a_user_a_hook_denies_tasks_read(
    crm2_app_factory: Any,
) -> None:
    """The timeline and extra fields asked the roles alone (``principal.has_permission``):
    a user a hook denied ``tasks:read`` (403 on the task routes) still saw the deal's
    tasks' titles and open count there."""
    rule = PermissionVotes("tasks:read", depends=("tasks",))  # a suspension
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "tasks", rule.name], extra_plugins=(rule,), scheduler_enabled=False
    )
    await seed_shipped_rules(app)
    tasks = Tasks(app)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    deal = await a_deal(tasks, admin, agent)
    await tasks.create(agent, title="Secret plan", link={"kind": "deals.deal", "id": deal["id"]})
    url = f"/api/v1/deals/deals/{deal['id']}"
    rule.deny(agent.id)
    assert (await tasks.client.get(f"{API}/tasks", headers=agent.headers)).status_code == 403

    extra = await tasks.client.get(f"{url}/extra", headers=agent.headers)
    timeline = await tasks.client.get(f"{url}/timeline", headers=agent.headers)
    assert extra.status_code == 200 and timeline.status_code == 200, timeline.text
    assert "tasks" not in extra.json()["fields"]
    assert [e for e in timeline.json()["items"] if e["source"] == "tasks"] == []

    rule.votes.clear()  # the hook decides per request
    extra = await tasks.client.get(f"{url}/extra", headers=agent.headers)
    assert extra.json()["fields"]["tasks"] == {"open_tasks": 1}
