"""Reminders fire ``tasks.task.reminder_due`` exactly once: on time, late, twice, concurrently."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm2_tasks.clock import set_clock
from crm2_tasks.jobs import run_timers
from crm2_tasks.models import Reminder, Task
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col
from tasks_kit import API, Tasks

from crm2_core.api import User

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)


def at(app: Any, moment: datetime) -> None:
    set_clock(app.context, lambda: moment)


async def test_each_reminder_fires_once_on_time_and_when_the_scheduler_is_late(
    tasks: Tasks,
) -> None:
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    task = await tasks.create(
        agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[30, 60]
    )
    ctx = tasks.app.context
    assert (await run_timers(ctx, T0 + timedelta(minutes=59)))["reminders"] == 0
    assert (await run_timers(ctx, T0 + timedelta(minutes=61)))["reminders"] == 1
    assert (await run_timers(ctx, T0 + timedelta(minutes=61)))["reminders"] == 0  # run twice
    assert (await run_timers(ctx, T0 + timedelta(hours=5)))["reminders"] == 1  # late
    assert (await run_timers(ctx, T0 + timedelta(hours=6)))["reminders"] == 0
    events = await tasks.events("tasks.task.reminder_due")
    assert [(e.subject, e.data["minutes_before"]) for e in events] == [
        (task["id"], 60),
        (task["id"], 30),
    ]
    assert events[0].data["assignee_id"] == str(agent.id)


async def test_moving_the_due_time_rearms_but_a_fired_reminder_never_repeats(
    tasks: Tasks,
) -> None:
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    task = await tasks.create(agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    ctx = tasks.app.context
    assert (await run_timers(ctx, T0 + timedelta(hours=1, minutes=1)))["reminders"] == 1
    edited = await tasks.patch(agent, task, title="renamed")  # same due: nothing re-armed
    assert edited.status_code == 200
    assert (await run_timers(ctx, T0 + timedelta(hours=1, minutes=2)))["reminders"] == 0
    moved = await tasks.patch(agent, edited.json(), due_at=(T0 + timedelta(days=1)).isoformat())
    assert moved.status_code == 200
    assert (await run_timers(ctx, T0 + timedelta(hours=22)))["reminders"] == 0
    assert (await run_timers(ctx, T0 + timedelta(hours=23, minutes=1)))["reminders"] == 1


async def test_a_done_task_reminds_nobody(tasks: Tasks) -> None:
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    task = await tasks.create(agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    done = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    assert done.status_code == 200
    assert (await run_timers(tasks.app.context, T0 + timedelta(hours=3)))["reminders"] == 0


async def test_two_schedulers_at_once_fire_each_reminder_once(
    tasks: Tasks, crm2_app_factory: Any
) -> None:
    """Two application contexts (two engines, as two processes have) race on the same rows."""
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    count = 40
    for i in range(count):
        await tasks.create(
            agent, due_at=(T0 + timedelta(hours=1, minutes=i)).isoformat(), reminders=[45]
        )
    # no scheduler: its start-up run would fire on the real clock (months past the test's) first
    other = await crm2_app_factory(plugins=["tasks"], scheduler_enabled=False)
    late = T0 + timedelta(hours=3)
    results = await asyncio.gather(
        run_timers(tasks.app.context, late),
        run_timers(other.context, late),
        run_timers(tasks.app.context, late),
    )
    assert sum(r["reminders"] for r in results) == count
    events = await tasks.events("tasks.task.reminder_due")
    assert len(events) == count and len({e.subject for e in events}) == count


async def test_a_due_time_outside_years_1900_to_2999_is_refused(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    task = await tasks.create(agent, due_at="2026-03-23T09:00:00Z")
    for due in ("0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "3000-01-01T00:00:00Z"):
        body = {"title": "x", "due_at": due, "reminders": [10]}
        created = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
        assert created.status_code == 422, created.text
        assert created.headers["content-type"] == "application/problem+json"
        assert "due_at" in created.text
        patched = await tasks.patch(agent, task, due_at=due)
        assert patched.status_code == 422, patched.text
        assert "due_at" in patched.text


async def test_a_stored_due_time_near_year_1_arms_no_reminder_and_does_not_fail(
    tasks: Tasks,
) -> None:
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    task = await tasks.create(agent, due_at="2026-03-24T09:00:00Z", reminders=[10])
    async with tasks.app.context.session_factory() as session:  # a row from before the bounds
        year_one = datetime(1, 1, 1, 0, 5, tzinfo=UTC)
        await session.execute(
            update(Task).where(col(Task.id) == uuid.UUID(task["id"])).values(due_at=year_one)
        )
        await session.commit()
    patched = await tasks.patch(agent, task, reminders=[10, 60])
    assert patched.status_code == 200, patched.text
    done = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    assert done.status_code == 200, done.text
    reopened = await tasks.client.post(f"{API}/tasks/{task['id']}/reopen", headers=agent.headers)
    assert reopened.status_code == 200, reopened.text
    assert (await run_timers(tasks.app.context, T0 + timedelta(days=2)))["reminders"] == 0


async def test_a_reminder_due_but_not_yet_fired_survives_an_edit(tasks: Tasks) -> None:
    """The scheduler runs every minute (or is late): a status change, or another reminder
    added, in between must not drop the reminder whose time has just come."""
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    task = await tasks.create(
        agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60, 90]
    )
    at(tasks.app, T0 + timedelta(hours=1, seconds=30))  # both due, the scheduler not yet run
    moved = await tasks.patch(agent, task, status="in_progress")
    assert moved.status_code == 200, moved.text
    more = await tasks.patch(agent, moved.json(), reminders=[60, 90, 30])
    assert more.status_code == 200, more.text
    ctx = tasks.app.context
    assert (await run_timers(ctx, T0 + timedelta(hours=1, minutes=1)))["reminders"] == 2
    assert (await run_timers(ctx, T0 + timedelta(hours=1, minutes=31)))["reminders"] == 1
    assert (await run_timers(ctx, T0 + timedelta(hours=3)))["reminders"] == 0
    events = await tasks.events("tasks.task.reminder_due")
    assert sorted(e.data["minutes_before"] for e in events) == [30, 60, 90]
    # moving the due time still drops what the old time armed and would now be past
    task = (await tasks.get(agent, task["id"])).json()
    at(tasks.app, T0 + timedelta(hours=4))
    dropped = await tasks.patch(
        agent, task, reminders=[5], due_at=(T0 + timedelta(hours=4, minutes=2)).isoformat()
    )
    assert dropped.status_code == 200, dropped.text
    assert (await run_timers(ctx, T0 + timedelta(hours=5)))["reminders"] == 0


async def test_a_reminder_claimed_after_a_reassignment_goes_to_the_new_assignee(
    tasks: Tasks,
) -> None:
    """The scheduler reads due reminders with their tasks, then claims them one by one: a
    reassignment committed in between must not send the reminder to the old assignee."""
    ctx = tasks.app.context
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("holds a row lock to stop the scheduler between its read and its claim")
    at(tasks.app, T0)
    agent, other = await tasks.user("agent"), await tasks.user("agent")
    task = await tasks.create(agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    # connections of their own: the app's pool is the scheduler's and the request's
    outside = create_async_engine(ctx.engine.url, poolclass=NullPool)
    async with outside.connect() as blocker, outside.connect() as watcher:
        locked = await blocker.begin()
        await blocker.execute(
            select(Reminder.id).where(Reminder.task_id == uuid.UUID(task["id"])).with_for_update()
        )
        run = asyncio.create_task(run_timers(ctx, T0 + timedelta(hours=1, minutes=1)))
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        for _ in range(1000):  # the scheduler has read the rows and waits on its claim
            if (await watcher.execute(waiting)).scalar():
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the scheduler never reached its claim")
        given = await tasks.client.post(
            f"{API}/tasks/{task['id']}/assign",
            json={"assignee_id": str(other.id)},
            headers=agent.headers,
        )
        assert given.status_code == 200, given.text
        await locked.rollback()
        assert (await run)["reminders"] == 1
    await outside.dispose()
    (event,) = await tasks.events("tasks.task.reminder_due")
    assert event.data["assignee_id"] == str(other.id)


async def _reminder_rows(tasks: Tasks, task_id: str) -> list[Reminder]:
    async with tasks.app.context.session_factory() as session:
        stmt = select(Reminder).where(col(Reminder.task_id) == uuid.UUID(task_id))
        return list((await session.execute(stmt)).scalars())


async def test_a_reminder_for_a_deactivated_assignee_is_skipped_with_its_reason(
    tasks: Tasks,
) -> None:
    at(tasks.app, T0)
    agent, stays = await tasks.user("agent"), await tasks.user("agent")
    gone = await tasks.create(agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    kept = await tasks.create(stays, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    async with tasks.app.context.session_factory() as session:
        await session.execute(update(User).where(col(User.id) == agent.id).values(is_active=False))
        await session.commit()
    ctx = tasks.app.context
    assert (await run_timers(ctx, T0 + timedelta(hours=1, minutes=1)))["reminders"] == 1
    assert [e.subject for e in await tasks.events("tasks.task.reminder_due")] == [kept["id"]]
    (skipped,) = await _reminder_rows(tasks, gone["id"])
    assert skipped.fired_at is not None and skipped.skipped_reason == "assignee_inactive"
    (sent,) = await _reminder_rows(tasks, kept["id"])
    assert sent.skipped_reason is None
    assert (await run_timers(ctx, T0 + timedelta(hours=3)))["reminders"] == 0  # never retried


async def test_a_reminder_for_an_assignee_without_tasks_read_is_skipped(tasks: Tasks) -> None:
    at(tasks.app, T0)
    admin = await tasks.user("admin")
    role = {"name": "helper", "permissions": ["tasks:read", "tasks:write"]}
    made = await tasks.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    assert made.status_code == 201, made.text
    helper = await tasks.user("helper")
    task = await tasks.create(helper, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    taken = await tasks.client.patch(
        "/api/v1/auth/roles/helper",
        json={"permissions": ["tasks:write"]},
        headers={**admin.headers, "If-Match": made.headers["ETag"]},
    )
    assert taken.status_code == 200, taken.text
    assert (await run_timers(tasks.app.context, T0 + timedelta(hours=1, minutes=1)))[
        "reminders"
    ] == 0
    assert await tasks.events("tasks.task.reminder_due") == []
    (skipped,) = await _reminder_rows(tasks, task["id"])
    assert skipped.skipped_reason == "assignee_cannot_read_tasks"


async def test_a_reminder_of_an_unassigned_task_still_fires(tasks: Tasks) -> None:
    at(tasks.app, T0)
    agent = await tasks.user("agent")
    task = await tasks.create(agent, due_at=(T0 + timedelta(hours=2)).isoformat(), reminders=[60])
    given = await tasks.client.post(
        f"{API}/tasks/{task['id']}/assign", json={"assignee_id": None}, headers=agent.headers
    )
    assert given.status_code == 200, given.text
    assert (await run_timers(tasks.app.context, T0 + timedelta(hours=1, minutes=1)))[
        "reminders"
    ] == 1
