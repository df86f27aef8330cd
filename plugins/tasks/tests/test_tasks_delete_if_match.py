"""DELETE takes If-Match as an option: sent, another version is 412 and nothing is deleted."""

from __future__ import annotations

import pytest
from crm2_tasks.models import Task
from crm2_tasks.service import tasks as service
from tasks_kit import (
    API,
    Tasks,
    check_if_match_is_optional_in_openapi,
    check_stale_delete_is_412,
    edited_after_read,
)


async def test_delete_with_a_stale_if_match_is_412_and_keeps_the_task(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    task = await tasks.create(manager)
    url = f"{API}/tasks/{task['id']}"
    await check_stale_delete_is_412(tasks, url, manager.headers, {"title": "Edited"})
    assert len(await tasks.events("tasks.task.deleted")) == 1  # the fresh one only


async def test_delete_without_if_match_still_deletes(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    task = await tasks.create(manager)
    gone = await tasks.client.delete(f"{API}/tasks/{task['id']}", headers=manager.headers)
    assert gone.status_code == 204, gone.text


async def test_delete_declares_its_optional_if_match_and_412_in_openapi(tasks: Tasks) -> None:
    await check_if_match_is_optional_in_openapi(tasks, f"{API}/tasks/{{task_id}}")


async def test_an_edit_committed_after_the_read_makes_a_conditional_delete_412(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = await tasks.user("manager")
    task = await tasks.create(manager)
    monkeypatch.setattr(service, "get_task", edited_after_read(service.get_task, Task))
    raced = await tasks.client.delete(
        f"{API}/tasks/{task['id']}", headers={**manager.headers, "If-Match": '"v1"'}
    )
    assert raced.status_code == 412, raced.text
    monkeypatch.undo()
    assert (await tasks.get(manager, task["id"])).status_code == 200
