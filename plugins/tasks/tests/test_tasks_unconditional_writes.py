"""complete / reopen / assign take If-Match as an option: without it they act on the task
as it is, so an edit racing them is no failed precondition (412 is for If-Match only)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from crm2_tasks.models import Task
from crm2_tasks.repository import tasks as task_repo
from sqlalchemy import update
from sqlmodel import col
from tasks_kit import API, Tasks


def race_reads(monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """After each of the next ``times`` reads of a task, another edit commits first (an
    UPDATE in the reader's own session stands for it: the reader's versioned write then
    finds another version, as it would after a concurrent commit)."""
    read = task_repo.get_task
    left = [times]

    async def racing(session: Any, visibility: Any, task_id: uuid.UUID) -> Task | None:
        task = await read(session, visibility, task_id)
        if task is not None and left[0] > 0:
            left[0] -= 1
            await session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(description="edited meanwhile", version=col(Task.version) + 1)
                .execution_options(synchronize_session=False)
            )
        return task

    monkeypatch.setattr(task_repo, "get_task", racing)


@pytest.mark.parametrize("verb", ["complete", "assign"])
async def test_an_unconditional_verb_racing_an_edit_applies_to_the_edited_task(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    agent, other = await tasks.user("agent"), await tasks.user("agent")
    task = await tasks.create(agent)
    race_reads(monkeypatch, 1)
    body = {"assignee_id": str(other.id)} if verb == "assign" else None
    response = await tasks.client.post(
        f"{API}/tasks/{task['id']}/{verb}", json=body, headers=agent.headers
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["description"] == "edited meanwhile"  # the racing edit stands
    assert after["version"] == task["version"] + 2
    if verb == "assign":
        assert after["assignee_id"] == str(other.id)
    else:
        assert after["status"] == "done"


async def test_an_unconditional_reopen_racing_an_edit_applies(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await tasks.user("agent")
    task = await tasks.create(agent)
    done = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    assert done.status_code == 200
    race_reads(monkeypatch, 1)
    reopened = await tasks.client.post(f"{API}/tasks/{task['id']}/reopen", headers=agent.headers)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "todo"


async def test_an_unconditional_verb_that_keeps_losing_the_race_is_409(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await tasks.user("agent")
    task = await tasks.create(agent)
    race_reads(monkeypatch, 1000)
    response = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("tasks-edit-conflict")
    monkeypatch.undo()
    assert (await tasks.get(agent, task["id"])).json()["status"] == "todo"  # nothing changed


async def test_a_conditional_verb_racing_an_edit_is_still_412(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await tasks.user("agent")
    task = await tasks.create(agent)
    race_reads(monkeypatch, 1)
    headers = {**agent.headers, "If-Match": f'"v{task["version"]}"'}
    response = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=headers)
    assert response.status_code == 412, response.text
