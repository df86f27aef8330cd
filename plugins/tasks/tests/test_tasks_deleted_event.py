"""Deleting a task publishes ``tasks.task.deleted``: streams and other plugins learn of it."""

from __future__ import annotations

from datetime import UTC, datetime

from crm2_tasks.clock import set_clock
from tasks_kit import API, Tasks

from crm2_core.testing.sse import open_stream


async def test_a_deleted_task_reaches_its_assignees_stream_and_no_strangers(
    tasks: Tasks,
) -> None:
    creator, assignee, stranger = (
        await tasks.user("agent"),
        await tasks.user("agent"),
        await tasks.user("agent"),
    )
    manager = await tasks.user("manager")
    task = await tasks.create(creator, assignee_id=str(assignee.id))
    await tasks.app.settle_events()
    async with (
        open_stream(tasks.app, "tasks", assignee.headers) as theirs,
        open_stream(tasks.app, "tasks", stranger.headers) as strangers,
    ):
        gone = await tasks.client.delete(f"{API}/tasks/{task['id']}", headers=manager.headers)
        assert gone.status_code == 204, gone.text
        await tasks.create(stranger, title="the stranger's own")
        await tasks.app.settle_events()
        message = await theirs.next_event()
        assert message.event == "tasks.task.deleted"
        data = message.json()["data"]
        assert data["title"] == task["title"]
        assert data["assignee_id"] == str(assignee.id)
        assert data["creator_id"] == str(creator.id)
        # the stranger's next event is their own task: the deletion never reached them
        first = await strangers.next_event()
        assert first.event == "tasks.task.created"
        assert first.json()["data"]["title"] == "the stranger's own"
    (record,) = await tasks.events("tasks.task.deleted")
    assert str(record.subject) == task["id"]
    assert record.data["status"] == "todo" and record.data["series_id"] is None


async def test_deleting_with_scope_following_publishes_one_event_per_deleted_task(
    tasks: Tasks,
) -> None:
    manager = await tasks.user("manager")
    set_clock(tasks.app.context, lambda: datetime(2026, 3, 20, tzinfo=UTC))
    first = await tasks.create(
        manager, due_at="2026-03-23T08:00:00Z", recurrence="FREQ=WEEKLY;BYDAY=MO"
    )
    done = await tasks.client.post(f"{API}/tasks/{first['id']}/complete", headers=manager.headers)
    assert done.status_code == 200, done.text
    second_id = done.headers["Link"].split(">")[0].split("/")[-1]
    reopened = await tasks.client.post(f"{API}/tasks/{first['id']}/reopen", headers=manager.headers)
    assert reopened.status_code == 200, reopened.text
    gone = await tasks.client.delete(
        f"{API}/tasks/{first['id']}", params={"scope": "following"}, headers=manager.headers
    )
    assert gone.status_code == 204, gone.text
    assert (await tasks.get(manager, second_id)).status_code == 404
    deleted = await tasks.events("tasks.task.deleted")
    assert sorted(str(r.subject) for r in deleted) == sorted([first["id"], second_id])
    assert {r.data["series_id"] for r in deleted} == {first["series_id"]}


async def test_a_refused_delete_publishes_nothing(tasks: Tasks) -> None:
    owner, manager = await tasks.user("agent"), await tasks.user("manager")
    task = await tasks.create(owner)
    refused = await tasks.client.delete(f"{API}/tasks/{task['id']}", headers=owner.headers)
    assert refused.status_code == 403
    missing = await tasks.client.delete(
        f"{API}/tasks/00000000-0000-4000-8000-000000000000", headers=manager.headers
    )
    assert missing.status_code == 404
    assert await tasks.events("tasks.task.deleted") == []
