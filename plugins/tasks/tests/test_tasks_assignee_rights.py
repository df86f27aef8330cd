"""A task goes only to someone who may read tasks: assign, create, SLA policies, escalation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from crm2_tasks.clock import set_clock
from crm2_tasks.jobs import run_timers
from tasks_kit import API, Tasks, User
from test_tasks_automations import RULE, OrderPlaced, shop_app

from crm2_core.api import publish

ROLES = "/api/v1/auth/roles"
MONDAY = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)  # the built-in calendar: Mon-Fri 09-17 UTC


def at(tasks: Tasks, moment: datetime) -> None:
    set_clock(tasks.app.context, lambda: moment)


async def policy(tasks: Tasks, admin: User, **fields: Any) -> None:
    body = {"name": "escalating", **fields}
    response = await tasks.client.post(f"{API}/sla-policies", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text


def _names_the_permission(response: Any) -> None:
    problem = response.json()
    assert response.status_code == 422, problem
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("tasks-assignee-not-permitted")
    assert "tasks:read" in problem["detail"]


async def test_assigning_to_a_user_without_tasks_read_is_422_and_changes_nothing(
    tasks: Tasks,
) -> None:
    agent = await tasks.user("agent")
    nobody = await tasks.app.create_user()  # active, no role: may not read tasks
    task = await tasks.create(agent)
    refused = await tasks.client.post(
        f"{API}/tasks/{task['id']}/assign",
        json={"assignee_id": str(nobody)},
        headers=agent.headers,
    )
    _names_the_permission(refused)
    assert (await tasks.get(agent, task["id"])).json()["assignee_id"] == str(agent.id)
    assert await tasks.events("tasks.task.assigned") == []
    created = await tasks.client.post(
        f"{API}/tasks",
        json={"title": "for nobody", "assignee_id": str(nobody)},
        headers=agent.headers,
    )
    _names_the_permission(created)
    assert len(await tasks.events("tasks.task.created")) == 1


async def test_an_sla_policy_cannot_escalate_to_a_user_without_tasks_read(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    nobody = await tasks.app.create_user()
    refused = await tasks.client.post(
        f"{API}/sla-policies",
        json={"name": "to nobody", "response_minutes": 30, "escalate_to_user_id": str(nobody)},
        headers=admin.headers,
    )
    _names_the_permission(refused)


async def test_an_sla_policy_cannot_escalate_to_a_role_that_does_not_exist(tasks: Tasks) -> None:
    """A misspelt role would only show at the first breach, as a skipped escalation."""
    admin = await tasks.user("admin")
    h = admin.headers
    body = {"name": "to a ghost", "response_minutes": 30, "escalate_to_role": "dispatchr"}
    refused = await tasks.client.post(f"{API}/sla-policies", json=body, headers=h)
    problem = refused.json()
    assert refused.status_code == 422, problem
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("tasks-invalid-sla-policy")
    assert "escalate_to_role" in problem["detail"] and "dispatchr" in problem["detail"]
    assert (await tasks.client.get(f"{API}/sla-policies", headers=h)).json()["items"] == []
    made = await tasks.client.post(
        f"{API}/sla-policies", json={**body, "escalate_to_role": "agent"}, headers=h
    )
    assert made.status_code == 201, made.text
    etag = made.headers["ETag"]
    patched = await tasks.client.patch(
        f"{API}/sla-policies/{made.json()['id']}",
        json={"escalate_to_role": "AGENT"},  # role names are exact
        headers={**h, "If-Match": etag},
    )
    assert patched.status_code == 422, patched.text
    assert "AGENT" in patched.json()["detail"]
    cleared = await tasks.client.patch(
        f"{API}/sla-policies/{made.json()['id']}",
        json={"escalate_to_role": None},
        headers={**h, "If-Match": etag},
    )
    assert cleared.status_code == 200, cleared.text


async def _dispatcher_role(tasks: Tasks, admin: User) -> str:
    """A role that reads and writes tasks; the returned ETag lets the test take reading away."""
    body = {"name": "dispatcher", "permissions": ["tasks:read", "tasks:write"]}
    made = await tasks.client.post(ROLES, json=body, headers=admin.headers)
    assert made.status_code == 201, made.text
    return made.headers["ETag"]


async def _take_reading_away(tasks: Tasks, admin: User, etag: str) -> None:
    changed = await tasks.client.patch(
        f"{ROLES}/dispatcher",
        json={"permissions": ["tasks:write"]},
        headers={**admin.headers, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text


async def test_a_breach_skips_an_escalation_target_who_may_no_longer_read_tasks(
    tasks: Tasks,
) -> None:
    at(tasks, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    etag = await _dispatcher_role(tasks, admin)
    lead = await tasks.user("dispatcher")
    reader = await tasks.user("dispatcher", "agent")  # reads tasks through "agent"
    await tasks.create(reader)  # busier than lead: the role alone would pick lead
    await policy(
        tasks,
        admin,
        priority="high",
        response_minutes=60,
        escalate_to_user_id=str(lead.id),
        escalate_to_role="dispatcher",
        escalate_raise_priority=True,
    )
    await _take_reading_away(tasks, admin, etag)
    task = await tasks.create(agent, priority="high")
    assert (await run_timers(tasks.app.context, MONDAY + timedelta(minutes=61)))["breaches"] == 1
    escalated = (await tasks.get(admin, task["id"])).json()
    assert escalated["assignee_id"] == str(reader.id) and escalated["priority"] == "urgent"
    (breached,) = await tasks.events("tasks.sla.breached")
    assert breached.data["escalation"] == [
        f"skipped:{lead.id}:lacks_tasks_read",
        f"reassigned:{reader.id}",
        "priority:urgent",
    ]


async def test_a_breach_records_a_role_none_of_whose_users_may_read_tasks(tasks: Tasks) -> None:
    at(tasks, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    etag = await _dispatcher_role(tasks, admin)
    await tasks.user("dispatcher")
    await policy(tasks, admin, response_minutes=60, escalate_to_role="dispatcher")
    await _take_reading_away(tasks, admin, etag)
    task = await tasks.create(agent)
    assert (await run_timers(tasks.app.context, MONDAY + timedelta(minutes=61)))["breaches"] == 1
    assert (await tasks.get(admin, task["id"])).json()["assignee_id"] == str(agent.id)
    (breached,) = await tasks.events("tasks.sla.breached")
    assert breached.data["escalation"] == ["skipped:role:dispatcher:no_active_user_with_tasks_read"]
    assert await tasks.events("tasks.task.assigned") == []


async def test_an_automation_rule_leaves_unassigned_a_task_for_someone_who_cannot_read_it(
    crm2_app_factory: Any,
) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin = await tasks.user("admin")
    nobody = await tasks.app.create_user()
    made = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    assert made.status_code == 201, made.text
    async with tasks.app.context.session_factory() as session:
        event = OrderPlaced(customer="Anna Berg", total="5000", owner_id=nobody)
        publish(session, event, subject=uuid.uuid4())
        await session.commit()
    await tasks.app.settle_events()
    (task,) = (await tasks.client.get(f"{API}/tasks", headers=admin.headers)).json()["items"]
    assert task["title"] == "Call Anna Berg" and task["assignee_id"] is None


async def test_a_series_next_occurrence_waits_unassigned_when_its_assignee_lost_tasks_read(
    tasks: Tasks,
) -> None:
    at(tasks, MONDAY)
    admin, manager = await tasks.user("admin"), await tasks.user("manager")
    etag = await _dispatcher_role(tasks, admin)
    worker = await tasks.user("dispatcher")
    first = await tasks.create(
        manager,
        assignee_id=str(worker.id),
        due_at="2026-03-23T10:00:00Z",
        recurrence="FREQ=WEEKLY;BYDAY=MO",
    )
    await _take_reading_away(tasks, admin, etag)
    done = await tasks.client.post(f"{API}/tasks/{first['id']}/complete", headers=manager.headers)
    assert done.status_code == 200, done.text
    next_id = done.headers["Link"].split(">")[0].split("/")[-1]
    upcoming = (await tasks.get(manager, next_id)).json()
    assert upcoming["due_at"].startswith("2026-03-30") and upcoming["assignee_id"] is None
