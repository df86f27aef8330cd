"""Every response works ``overdue`` out on the tasks clock, as the lists and views do."""

from __future__ import annotations

from datetime import UTC, datetime

from crm2_tasks.clock import set_clock
from tasks_kit import API, Tasks

# far beyond the real clock: a task due before it is overdue only on the tasks clock
LATER = datetime(2990, 6, 1, tzinfo=UTC)
DUE = "2990-01-01T09:00:00Z"


async def test_every_response_reads_overdue_on_the_tasks_clock(tasks: Tasks) -> None:
    set_clock(tasks.app.context, lambda: LATER)
    manager, agent = await tasks.user("manager"), await tasks.user("agent")
    task = await tasks.create(manager, due_at=DUE)
    assert task["overdue"] is True
    assert (await tasks.get(manager, task["id"])).json()["overdue"] is True
    patched = await tasks.patch(manager, task, title="renamed")
    assert patched.status_code == 200, patched.text
    assert patched.json()["overdue"] is True
    url = f"{API}/tasks/{task['id']}"
    assigned = await tasks.client.post(
        f"{url}/assign", json={"assignee_id": str(agent.id)}, headers=manager.headers
    )
    assert assigned.status_code == 200 and assigned.json()["overdue"] is True
    done = await tasks.client.post(f"{url}/complete", headers=manager.headers)
    assert done.status_code == 200 and done.json()["overdue"] is False  # closed
    reopened = await tasks.client.post(f"{url}/reopen", headers=manager.headers)
    assert reopened.status_code == 200 and reopened.json()["overdue"] is True
    listed = await tasks.client.get(f"{API}/tasks", headers=manager.headers)
    assert [t["overdue"] for t in listed.json()["items"]] == [True]


async def test_a_task_due_before_now_but_after_the_tasks_clock_is_not_overdue(
    tasks: Tasks,
) -> None:
    set_clock(tasks.app.context, lambda: datetime(1990, 1, 1, tzinfo=UTC))
    agent = await tasks.user("agent")
    task = await tasks.create(agent, due_at="1990-06-01T09:00:00Z")
    assert task["overdue"] is False
    assert (await tasks.get(agent, task["id"])).json()["overdue"] is False
    patched = await tasks.patch(agent, task, priority="high")
    assert patched.status_code == 200 and patched.json()["overdue"] is False
