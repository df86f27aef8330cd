"""Recurring tasks over HTTP: completing creates the next; "this one" and "this and following"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crm2_tasks.clock import set_clock
from crm2_tasks.models import Series
from sqlalchemy import select
from tasks_kit import API, Tasks, User

START = "2026-03-23T09:00:00+01:00"  # Monday, Berlin winter time


async def weekly(tasks: Tasks, agent: User, **fields: Any) -> dict[str, Any]:
    set_clock(tasks.app.context, lambda: datetime(2026, 3, 20, tzinfo=UTC))
    body = {
        "title": "Weekly report",
        "due_at": START,
        "recurrence": "FREQ=WEEKLY;BYDAY=MO",
        "timezone": "Europe/Berlin",
        "checklist": [{"text": "numbers"}],
        **fields,
    }
    return await tasks.create(agent, **body)


async def complete(tasks: Tasks, agent: User, task: dict[str, Any]) -> Any:
    return await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)


async def test_completing_creates_the_next_occurrence_at_the_same_local_time(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    done = await complete(tasks, agent, first)
    assert done.status_code == 200
    next_id = done.headers["Link"].split(">")[0].split("/")[-1]
    nxt = (await tasks.get(agent, next_id)).json()
    assert nxt["due_at"] == "2026-03-30T07:00:00Z"  # 09:00 CEST after the DST change
    assert nxt["series_id"] == first["series_id"] and nxt["status"] == "todo"
    assert nxt["checklist"] == [{"text": "numbers", "done": False}]
    completed = (await tasks.events("tasks.task.completed"))[-1]
    assert completed.data["next_task_id"] == next_id


async def test_reopening_and_completing_again_creates_no_second_occurrence(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    assert (await complete(tasks, agent, first)).status_code == 200
    assert (
        await tasks.client.post(f"{API}/tasks/{first['id']}/reopen", headers=agent.headers)
    ).status_code == 200
    again = await complete(tasks, agent, first)
    assert again.status_code == 200 and "Link" not in again.headers
    listed = await tasks.client.get(f"{API}/tasks", headers=agent.headers)
    assert len(listed.json()["items"]) == 2


async def test_this_one_changes_only_this_occurrence(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    edited = await tasks.patch(agent, first, title="Report (short week)", scope="this")
    assert edited.status_code == 200
    done = await complete(tasks, agent, edited.json())
    nxt = (await tasks.get(agent, done.headers["Link"].split(">")[0].split("/")[-1])).json()
    assert nxt["title"] == "Weekly report"


async def test_this_and_following_splits_the_series(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    done = await complete(tasks, agent, first)
    second = (await tasks.get(agent, done.headers["Link"].split(">")[0].split("/")[-1])).json()
    changed = await tasks.patch(
        agent, second, title="Daily stand-up notes", recurrence="FREQ=DAILY", scope="following"
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["series_id"] != first["series_id"]
    third = await complete(tasks, agent, changed.json())
    nxt = (await tasks.get(agent, third.headers["Link"].split(">")[0].split("/")[-1])).json()
    assert nxt["title"] == "Daily stand-up notes"
    assert nxt["due_at"] == "2026-03-31T07:00:00Z"
    async with tasks.app.context.session_factory() as session:
        old = await session.get(Series, uuid.UUID(first["series_id"]))
        assert old is not None and old.rule == "FREQ=WEEKLY;BYDAY=MO;UNTIL=20260330T065959Z"
        count = len(list((await session.execute(select(Series))).scalars()))
        assert count == 2


async def test_following_on_the_first_occurrence_changes_the_series_in_place(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    changed = await tasks.patch(agent, first, priority="high", scope="following")
    assert changed.json()["series_id"] == first["series_id"]
    done = await complete(tasks, agent, changed.json())
    nxt = (await tasks.get(agent, done.headers["Link"].split(">")[0].split("/")[-1])).json()
    assert nxt["priority"] == "high"


async def test_cancelling_an_occurrence_moves_the_series_on(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    cancelled = await tasks.patch(agent, first, status="cancelled")
    assert cancelled.status_code == 200
    listed = await tasks.client.get(
        f"{API}/tasks", params={"status": "todo"}, headers=agent.headers
    )
    assert [t["due_at"] for t in listed.json()["items"]] == ["2026-03-30T07:00:00Z"]


async def test_a_count_ends_the_series(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=2")
    done = await complete(tasks, agent, first)
    second_id = done.headers["Link"].split(">")[0].split("/")[-1]
    last = await tasks.client.post(f"{API}/tasks/{second_id}/complete", headers=agent.headers)
    assert last.status_code == 200 and "Link" not in last.headers


async def test_recurrence_edits_need_scope_following(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    response = await tasks.patch(agent, first, recurrence="FREQ=DAILY")
    assert response.status_code == 422
    plain = await tasks.create(agent)
    response = await tasks.patch(agent, plain, title="x", scope="following")
    assert response.status_code == 422


async def test_a_series_in_a_time_zone_folder_is_refused(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    body = {"title": "x", "due_at": START, "recurrence": "FREQ=WEEKLY", "timezone": "America"}
    response = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_next_occurrence_goes_to_the_current_assignee(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    first, second = await tasks.user("agent"), await tasks.user("agent")
    task = await weekly(tasks, manager, assignee_id=str(first.id))
    assign = f"{API}/tasks/{task['id']}/assign"
    moved = await tasks.client.post(
        assign, json={"assignee_id": str(second.id)}, headers=manager.headers
    )
    assert moved.status_code == 200, moved.text
    done = await complete(tasks, second, task)
    assert done.status_code == 200, done.text
    next_id = done.headers["Link"].split(">")[0].split("/")[-1]
    following = await tasks.get(second, next_id)
    assert following.status_code == 200
    assert following.json()["assignee_id"] == str(second.id)


async def test_a_series_ends_at_due_at_s_last_year(tasks: Tasks) -> None:
    """Occurrences keep to due_at's bounds (1900-2999): a yearly task due in 2999 has no
    occurrence in 3000, nor one in 9999 that sorts after "no due time"."""
    agent = await tasks.user("agent")
    for rule in ("FREQ=YEARLY", "FREQ=YEARLY;INTERVAL=100"):
        last = await tasks.create(
            agent, due_at="2999-12-31T23:59:00Z", recurrence=rule, timezone="UTC"
        )
        done = await complete(tasks, agent, last)
        assert done.status_code == 200, done.text
        assert "Link" not in done.headers, rule
        assert done.json()["status"] == "done"
    listed = await tasks.client.get(f"{API}/tasks", params={"open": "true"}, headers=agent.headers)
    assert listed.json()["items"] == []


async def test_moving_a_series_onto_an_occurrence_that_exists_is_a_422(tasks: Tasks) -> None:
    """The first occurrence, done (the next one made) and reopened, moved "this and
    following" onto the next one's time: two tasks for one occurrence, refused (not a 500)."""
    agent = await tasks.user("agent")
    first = await weekly(tasks, agent)
    done = await complete(tasks, agent, first)
    assert done.status_code == 200, done.text
    next_id = done.headers["Link"].split(">")[0].split("/")[-1]
    upcoming = (await tasks.get(agent, next_id)).json()
    reopened = await tasks.client.post(f"{API}/tasks/{first['id']}/reopen", headers=agent.headers)
    assert reopened.status_code == 200, reopened.text
    moved = await tasks.patch(
        agent, reopened.json(), due_at=upcoming["occurrence_at"], scope="following"
    )
    assert moved.status_code == 422, moved.text
    assert moved.json()["type"].endswith("tasks-invalid-recurrence")
    assert (await tasks.get(agent, first["id"])).json()["version"] == reopened.json()["version"]


async def _open_due(tasks: Tasks, user: User) -> list[str]:
    listed = await tasks.client.get(f"{API}/tasks", params={"open": "true"}, headers=user.headers)
    assert listed.status_code == 200, listed.text
    return [t["due_at"] for t in listed.json()["items"]]


async def test_deleting_an_occurrence_skips_it_and_the_series_goes_on(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    first = await weekly(tasks, manager)
    gone = await tasks.client.delete(f"{API}/tasks/{first['id']}", headers=manager.headers)
    assert gone.status_code == 204, gone.text
    assert (await tasks.get(manager, first["id"])).status_code == 404
    assert await _open_due(tasks, manager) == ["2026-03-30T07:00:00Z"]
    created = (await tasks.events("tasks.task.created"))[-1]
    assert created.data["series_id"] == first["series_id"]


async def test_deleting_with_scope_following_ends_the_series(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    first = await weekly(tasks, manager)
    done = await complete(tasks, manager, first)
    second_id = done.headers["Link"].split(">")[0].split("/")[-1]
    gone = await tasks.client.delete(
        f"{API}/tasks/{second_id}", params={"scope": "following"}, headers=manager.headers
    )
    assert gone.status_code == 204, gone.text
    assert await _open_due(tasks, manager) == []
    async with tasks.app.context.session_factory() as session:
        series = await session.get(Series, uuid.UUID(first["series_id"]))
        assert series is not None and series.rule.endswith(";UNTIL=20260330T065959Z")
    # the done first occurrence stays, and reopening then completing it makes nothing new
    reopened = await tasks.client.post(f"{API}/tasks/{first['id']}/reopen", headers=manager.headers)
    assert reopened.status_code == 200, reopened.text
    again = await complete(tasks, manager, first)
    assert again.status_code == 200 and "Link" not in again.headers


async def test_deleting_an_older_reopened_occurrence_brings_back_no_skipped_one(
    tasks: Tasks,
) -> None:
    manager = await tasks.user("manager")
    first = await weekly(tasks, manager)
    done = await complete(tasks, manager, first)
    second_id = done.headers["Link"].split(">")[0].split("/")[-1]
    skipped = await tasks.client.delete(f"{API}/tasks/{second_id}", headers=manager.headers)
    assert skipped.status_code == 204
    assert await _open_due(tasks, manager) == ["2026-04-06T07:00:00Z"]
    reopened = await tasks.client.post(f"{API}/tasks/{first['id']}/reopen", headers=manager.headers)
    assert reopened.status_code == 200
    gone = await tasks.client.delete(f"{API}/tasks/{first['id']}", headers=manager.headers)
    assert gone.status_code == 204
    assert await _open_due(tasks, manager) == ["2026-04-06T07:00:00Z"]


async def test_a_bad_delete_scope_is_422_and_deletes_nothing(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    first = await weekly(tasks, manager)
    bad = await tasks.client.delete(
        f"{API}/tasks/{first['id']}", params={"scope": "all"}, headers=manager.headers
    )
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"] == "application/problem+json"
    assert (await tasks.get(manager, first["id"])).status_code == 200


async def test_following_on_a_task_that_does_not_repeat_says_so(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    for fields in ({}, {"due_at": START}):  # without a due time too: repeating comes first
        plain = await tasks.create(agent, **fields)
        response = await tasks.patch(agent, plain, title="x", scope="following")
        assert response.status_code == 422, response.text
        assert "does not repeat" in response.json()["detail"], (fields, response.text)
        assert (await tasks.get(agent, plain["id"])).json()["title"] == plain["title"]


async def test_a_series_made_with_following_still_needs_a_due_time(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    plain = await tasks.create(agent)
    response = await tasks.patch(agent, plain, recurrence="FREQ=DAILY", scope="following")
    assert response.status_code == 422, response.text
    assert "needs due_at" in response.json()["detail"]


async def test_a_rule_dateutil_cannot_evaluate_is_a_422_not_a_500(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    for rule in ("FREQ=YEARLY;BYEASTER=99999", "FREQ=MONTHLY;BYDAY=+60MO"):
        body = {"title": "x", "due_at": START, "recurrence": rule}
        response = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
        assert response.status_code == 422, (rule, response.text)
        assert response.json()["type"].endswith("tasks-invalid-recurrence")
    assert (await tasks.client.get(f"{API}/tasks", headers=agent.headers)).json()["items"] == []
