"""DELETE takes If-Match as an option: sent, another version is 412 and nothing is deleted."""

from __future__ import annotations

from typing import Any

import pytest
from crm2_tasks.models import Task
from crm2_tasks.service import tasks as service
from sqlalchemy import update
from tasks_kit import API, Tasks


async def test_delete_with_a_stale_if_match_is_412_and_keeps_the_task(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    task = await tasks.create(manager)
    edited = await tasks.patch(manager, task, title="Edited")
    assert edited.status_code == 200, edited.text
    path = f"{API}/tasks/{task['id']}"
    stale = await tasks.client.delete(path, headers={**manager.headers, "If-Match": '"v1"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await tasks.get(manager, task["id"])).status_code == 200
    assert await tasks.events("tasks.task.deleted") == []
    fresh = await tasks.client.delete(
        path, headers={**manager.headers, "If-Match": edited.headers["ETag"]}
    )
    assert fresh.status_code == 204, fresh.text
    assert (await tasks.get(manager, task["id"])).status_code == 404


async def test_delete_without_if_match_still_deletes(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    task = await tasks.create(manager)
    gone = await tasks.client.delete(f"{API}/tasks/{task['id']}", headers=manager.headers)
    assert gone.status_code == 204, gone.text


async def test_delete_declares_its_optional_if_match_and_412_in_openapi(tasks: Tasks) -> None:
    spec = (await tasks.client.get("/openapi.json")).json()
    operation = spec["paths"][f"{API}/tasks/{{task_id}}"]["delete"]
    (header,) = [p for p in operation["parameters"] if p["name"] == "If-Match"]
    assert header["in"] == "header" and header["required"] is False
    assert "412" in operation["responses"]


async def test_an_edit_committed_after_the_read_makes_a_conditional_delete_412(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = await tasks.user("manager")
    task = await tasks.create(manager)
    read = service.get_task

    async def read_then_edited(session: Any, visibility: Any, task_id: Any) -> Task:
        found = await read(session, visibility, task_id)
        # another request's edit lands between the DELETE's read and its write
        bump = update(Task).where(Task.id == task_id).values(version=Task.version + 1)
        await session.execute(bump.execution_options(synchronize_session=False))
        return found

    monkeypatch.setattr(service, "get_task", read_then_edited)
    raced = await tasks.client.delete(
        f"{API}/tasks/{task['id']}", headers={**manager.headers, "If-Match": '"v1"'}
    )
    assert raced.status_code == 412, raced.text
    monkeypatch.undo()
    assert (await tasks.get(manager, task["id"])).status_code == 200
