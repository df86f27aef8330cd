"""SLA timers: warning and breach exactly once, escalation, the clock paused while waiting."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from crm2_tasks.clock import set_clock
from crm2_tasks.jobs import run_timers
from crm2_tasks.models import Reminder, SlaPolicy, SlaTimer
from sqlalchemy import select, update
from sqlmodel import col
from tasks_kit import API, Tasks, User

from crm2_core.testing.statements import sent_to_postgresql

MONDAY = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)  # the built-in calendar: Mon-Fri 09-17 UTC


def at(app: Any, moment: datetime) -> None:
    set_clock(app.context, lambda: moment)


async def policy(tasks: Tasks, admin: User, **fields: Any) -> dict[str, Any]:
    body = {"name": f"policy {len(fields)} {fields.get('priority')}", **fields}
    response = await tasks.client.post(f"{API}/sla-policies", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_response_warning_and_breach_fire_once_and_escalate(tasks: Tasks) -> None:
    at(tasks.app, MONDAY)
    admin, agent, lead = (
        await tasks.user("admin"),
        await tasks.user("agent"),
        await tasks.user("manager"),
    )
    await policy(
        tasks,
        admin,
        priority="high",
        response_minutes=60,
        warning_share=0.5,
        escalate_to_user_id=str(lead.id),
        escalate_raise_priority=True,
    )
    task = await tasks.create(agent, priority="high")
    ctx = tasks.app.context
    assert await run_timers(ctx, MONDAY + timedelta(minutes=29)) == {
        "reminders": 0,
        "warnings": 0,
        "breaches": 0,
    }
    assert (await run_timers(ctx, MONDAY + timedelta(minutes=31)))["warnings"] == 1
    assert (await run_timers(ctx, MONDAY + timedelta(minutes=32)))["warnings"] == 0
    assert (await run_timers(ctx, MONDAY + timedelta(minutes=61)))["breaches"] == 1
    assert (await run_timers(ctx, MONDAY + timedelta(hours=5)))["breaches"] == 0
    escalated = (await tasks.get(admin, task["id"])).json()
    assert escalated["assignee_id"] == str(lead.id) and escalated["priority"] == "urgent"
    breached = await tasks.events("tasks.sla.breached")
    assert len(breached) == 1 and breached[0].data["timer"] == "response"
    assert breached[0].data["escalation"] == [f"reassigned:{lead.id}", "priority:urgent"]
    assigned = await tasks.events("tasks.task.assigned")
    assert assigned[-1].data["reason"] == "sla_escalation"


async def test_responding_in_time_stops_the_response_timer(tasks: Tasks) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, response_minutes=60)
    task = await tasks.create(agent)
    at(tasks.app, MONDAY + timedelta(minutes=10))
    assert (await tasks.patch(agent, task, status="in_progress")).status_code == 200
    assert await run_timers(tasks.app.context, MONDAY + timedelta(days=3)) == {
        "reminders": 0,
        "warnings": 0,
        "breaches": 0,
    }


async def test_the_resolution_clock_pauses_while_waiting_in_business_time(tasks: Tasks) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, resolution_minutes=8 * 60, warning_share=0.9)
    task = await tasks.create(agent, status="in_progress")
    ctx = tasks.app.context
    at(tasks.app, MONDAY + timedelta(hours=2))  # Monday 11:00
    waiting = await tasks.patch(agent, task, status="waiting")
    assert waiting.status_code == 200
    # Monday 17:30: the unpaused deadline (17:00) passed, but the clock stands still
    assert (await run_timers(ctx, MONDAY + timedelta(hours=8, minutes=30)))["breaches"] == 0
    at(tasks.app, MONDAY + timedelta(days=1, hours=2))  # Tuesday 11:00
    assert (await tasks.patch(agent, waiting.json(), status="in_progress")).status_code == 200
    timers = (await tasks.client.get(f"{API}/tasks/{task['id']}/sla", headers=agent.headers)).json()
    (resolution,) = timers
    # paused 11-17 Monday and 09-11 Tuesday: 8 business hours, so due Tuesday 17:00
    assert resolution["paused_seconds"] == 8 * 3600
    assert resolution["due_at"] == "2026-03-24T17:00:00Z"
    assert (await run_timers(ctx, MONDAY + timedelta(days=1, hours=7, minutes=59)))["breaches"] == 0
    assert (await run_timers(ctx, MONDAY + timedelta(days=1, hours=8, minutes=1)))["breaches"] == 1


async def test_a_task_created_waiting_starts_with_its_resolution_clock_paused(
    tasks: Tasks,
) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, resolution_minutes=60)
    task = await tasks.create(agent, status="waiting")
    (resolution,) = (
        await tasks.client.get(f"{API}/tasks/{task['id']}/sla", headers=agent.headers)
    ).json()
    assert resolution["paused_since"] == "2026-03-23T09:00:00Z"
    ctx = tasks.app.context
    assert (await run_timers(ctx, MONDAY + timedelta(hours=3)))["breaches"] == 0  # waiting
    at(tasks.app, MONDAY + timedelta(hours=3))  # Monday 12:00: the clock starts
    assert (await tasks.patch(agent, task, status="in_progress")).status_code == 200
    assert (await run_timers(ctx, MONDAY + timedelta(hours=3, minutes=59)))["breaches"] == 0
    assert (await run_timers(ctx, MONDAY + timedelta(hours=4, minutes=1)))["breaches"] == 1


async def test_done_in_time_never_breaches(tasks: Tasks) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, resolution_minutes=60)
    task = await tasks.create(agent)
    assert (
        await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    ).status_code == 200
    assert (await run_timers(tasks.app.context, MONDAY + timedelta(days=2)))["breaches"] == 0


async def test_concurrent_schedulers_breach_once(tasks: Tasks, crm2_app_factory: Any) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, response_minutes=30, escalate_raise_priority=True)
    for _ in range(15):
        await tasks.create(agent, priority="low")
    # no scheduler: its start-up run would fire on the real clock (months past the test's) first
    other = await crm2_app_factory(plugins=["tasks"], scheduler_enabled=False)
    late = MONDAY + timedelta(hours=2)
    results = await asyncio.gather(
        run_timers(tasks.app.context, late), run_timers(other.context, late)
    )
    assert sum(r["breaches"] for r in results) == 15
    assert sum(r["warnings"] for r in results) == 15
    assert len(await tasks.events("tasks.sla.breached")) == 15
    listed = await tasks.client.get(
        f"{API}/tasks", params={"priority": "normal"}, headers=admin.headers
    )
    assert len(listed.json()["items"]) == 15  # raised exactly one level, once


async def test_policy_input_is_checked(tasks: Tasks) -> None:
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    for body in (
        {"name": "none"},
        {"name": "bad share", "response_minutes": 5, "warning_share": 1.5},
        {
            "name": "bad calendar",
            "response_minutes": 5,
            "calendar_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        },
        {"name": "bad priority", "response_minutes": 5, "priority": "asap"},
    ):
        response = await tasks.client.post(f"{API}/sla-policies", json=body, headers=admin.headers)
        assert response.status_code in (404, 422), (body, response.text)
    denied = await tasks.client.post(
        f"{API}/sla-policies", json={"name": "x", "response_minutes": 5}, headers=agent.headers
    )
    assert denied.status_code == 403


async def sla_of(tasks: Tasks, user: User, task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = await tasks.client.get(f"{API}/tasks/{task['id']}/sla", headers=user.headers)
    assert response.status_code == 200, response.text
    return {timer["kind"]: timer for timer in response.json()}


async def test_a_raised_priority_follows_the_stricter_policy_from_the_start(tasks: Tasks) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, name="normal", priority="normal", resolution_minutes=8 * 60)
    urgent = await policy(
        tasks, admin, name="urgent", priority="urgent", response_minutes=30,
        resolution_minutes=60,
    )  # fmt: skip
    task = await tasks.create(agent, status="in_progress")
    at(tasks.app, MONDAY + timedelta(minutes=40))
    raised = await tasks.patch(agent, task, priority="urgent")
    assert raised.status_code == 200, raised.text
    timers = await sla_of(tasks, agent, task)
    # counted from the task's start, not from the change; no response timer: it moved already
    assert set(timers) == {"resolution"}
    assert timers["resolution"]["policy_id"] == urgent["id"]
    assert timers["resolution"]["due_at"] == "2026-03-23T10:00:00Z"
    ctx = tasks.app.context
    assert (await run_timers(ctx, MONDAY + timedelta(minutes=59)))["breaches"] == 0
    assert (await run_timers(ctx, MONDAY + timedelta(minutes=61)))["breaches"] == 1
    # history stays: lowering it again leaves the breached timer as it was
    lowered = await tasks.patch(agent, raised.json(), priority="normal")
    assert lowered.status_code == 200, lowered.text
    after = await sla_of(tasks, agent, task)
    assert after["resolution"]["policy_id"] == urgent["id"]
    assert after["resolution"]["breached_at"] is not None


async def test_a_task_no_policy_fits_any_more_loses_its_live_timers(tasks: Tasks) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, name="vip", tag="vip", response_minutes=30, resolution_minutes=60)
    task = await tasks.create(agent)
    assert await sla_of(tasks, agent, task) == {}
    at(tasks.app, MONDAY + timedelta(minutes=10))
    tagged = await tasks.patch(agent, task, tags=["vip"])
    assert tagged.status_code == 200, tagged.text
    timers = await sla_of(tasks, agent, task)
    # a task that had no policy starts its clock when one applies
    assert timers["response"]["due_at"] == "2026-03-23T09:40:00Z"
    assert timers["resolution"]["due_at"] == "2026-03-23T10:10:00Z"
    untagged = await tasks.patch(agent, tagged.json(), tags=[])
    assert untagged.status_code == 200, untagged.text
    assert await sla_of(tasks, agent, task) == {}
    assert (await run_timers(tasks.app.context, MONDAY + timedelta(days=2)))["breaches"] == 0


async def test_a_create_is_its_reads_and_one_write_on_postgresql(tasks: Tasks) -> None:
    """The assignee check, the SLA policies (and the policy's calendar), then the task, its
    reminders, its timers and its event in one statement sent at the commit by itself
    (it was BEGIN, the task, a DELETE of reminders, the policies, the timers, the event,
    COMMIT). SQLite: the usual flush. Every row is written either way."""
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    office = {
        "name": "Office",
        "timezone": "UTC",
        "hours": {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    }
    made = await tasks.client.post(f"{API}/calendars", json=office, headers=admin.headers)
    assert made.status_code == 201, made.text
    await policy(
        tasks,
        admin,
        priority="high",
        response_minutes=60,
        resolution_minutes=600,
        calendar_id=made.json()["id"],
    )
    await tasks.create(agent)  # the role cache and the statements' plans warm
    postgresql = tasks.app.context.engine.dialect.name == "postgresql"
    due = MONDAY + timedelta(days=1)
    body = {"priority": "high", "due_at": due.isoformat(), "reminders": [30, 60, 60 * 48]}
    with sent_to_postgresql() as sent:
        task = await tasks.create(agent, **body)
    kinds = [s.split()[0] for s in sent if "auth_" not in s or s.startswith("SELECT EXISTS")]
    expected = ["SELECT", "SELECT", "SELECT", "WITH"]  # assignee, policies, calendar, write
    assert kinds == (expected if postgresql else []), sent
    async with tasks.app.context.session_factory() as session:
        reminders = (
            await session.execute(
                select(Reminder.minutes_before, Reminder.remind_at)
                .where(Reminder.task_id == uuid.UUID(task["id"]))
                .order_by(Reminder.minutes_before)
            )
        ).all()
        timers = (
            await session.execute(
                select(SlaTimer.kind, SlaTimer.due_at, SlaTimer.calendar_id)
                .where(SlaTimer.task_id == uuid.UUID(task["id"]))
                .order_by(SlaTimer.kind)
            )
        ).all()
    # the reminder 48 hours before is in the past: not armed
    assert [(m, at_) for m, at_ in reminders] == [
        (30, due - timedelta(minutes=30)),
        (60, due - timedelta(minutes=60)),
    ]
    calendar = uuid.UUID(made.json()["id"])
    # the office's hours, 08:00-18:00: 9 of the 10 hours on Monday from 09:00, 1 on Tuesday
    assert [(k, d, c) for k, d, c in timers] == [
        ("resolution", MONDAY + timedelta(days=1), calendar),
        ("response", MONDAY + timedelta(hours=1), calendar),
    ]
    (created,) = [
        e for e in await tasks.events("tasks.task.created") if str(e.subject) == task["id"]
    ]
    assert created.data["priority"] == "high" and created.data["assignee_id"] == str(agent.id)
    got = (await tasks.get(agent, task["id"])).json()
    assert got["reminders"] == [30, 60, 60 * 48] and got["version"] == 1


ONE_MINUTE_A_WEEK = {"name": "sparse", "timezone": "UTC", "hours": {"mon": [["09:00", "09:01"]]}}
A_YEAR = 525_600


async def test_a_target_the_calendar_cannot_reach_in_ten_years_is_refused(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    made = await tasks.client.post(
        f"{API}/calendars", json=ONE_MINUTE_A_WEEK, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    calendar = made.json()
    body = {"name": "year", "calendar_id": calendar["id"], "resolution_minutes": A_YEAR}
    refused = await tasks.client.post(f"{API}/sla-policies", json=body, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("tasks-invalid-sla-policy")
    hour = await policy(
        tasks, admin, name="hour", calendar_id=calendar["id"], resolution_minutes=60
    )
    headers = {**admin.headers, "If-Match": f'"v{hour["version"]}"'}
    raised = await tasks.client.patch(
        f"{API}/sla-policies/{hour['id']}", json={"resolution_minutes": A_YEAR}, headers=headers
    )
    assert raised.status_code == 422, raised.text
    # and a calendar a policy uses cannot shrink below the policy's target
    weekdays = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    office = await tasks.client.post(
        f"{API}/calendars", json={**ONE_MINUTE_A_WEEK, "name": "office", "hours": weekdays},
        headers=admin.headers,
    )  # fmt: skip
    await policy(
        tasks, admin, name="year", calendar_id=office.json()["id"], resolution_minutes=A_YEAR
    )
    shrunk = await tasks.client.patch(
        f"{API}/calendars/{office.json()['id']}",
        json={"hours": ONE_MINUTE_A_WEEK["hours"]},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert shrunk.status_code == 422, shrunk.text
    assert shrunk.json()["type"].endswith("tasks-invalid-calendar")


async def test_a_stored_policy_that_cannot_be_planned_never_fails_a_task_write(
    tasks: Tasks,
) -> None:
    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    made = await tasks.client.post(
        f"{API}/calendars", json=ONE_MINUTE_A_WEEK, headers=admin.headers
    )
    stored = await policy(tasks, admin, calendar_id=made.json()["id"], resolution_minutes=60)
    async with tasks.app.context.session_factory() as session:  # saved before the check
        await session.execute(
            update(SlaPolicy)
            .where(col(SlaPolicy.id) == uuid.UUID(stored["id"]))
            .values(resolution_minutes=A_YEAR, response_minutes=A_YEAR)
        )
        await session.commit()
    task = await tasks.create(agent)
    assert await sla_of(tasks, agent, task) == {}  # no timer rather than no task
    changed = await tasks.patch(agent, task, priority="high", status="waiting")
    assert changed.status_code == 200, changed.text
    moving = await tasks.patch(agent, changed.json(), status="in_progress")
    assert moving.status_code == 200, moving.text


async def test_an_escalation_racing_an_edit_leaves_the_other_escalations_in_place(
    tasks: Tasks, monkeypatch: Any
) -> None:
    """Each breach escalates in its own savepoint: one that keeps losing a race with an edit
    waits for the next run, the other breaches of the batch commit."""
    from crm2_tasks.models import Task
    from crm2_tasks.repository import timers as timers_repo

    at(tasks.app, MONDAY)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await policy(tasks, admin, response_minutes=30, escalate_raise_priority=True)
    raced = await tasks.create(agent, priority="low")
    at(tasks.app, MONDAY + timedelta(minutes=1))
    calm = await tasks.create(agent, priority="low")
    ctx = tasks.app.context
    assert (await run_timers(ctx, MONDAY + timedelta(minutes=26)))["warnings"] == 2
    read = timers_repo.claimed_task

    async def edited_meanwhile(session: Any, task_id: uuid.UUID) -> Any:
        task = await read(session, task_id)
        if task_id == uuid.UUID(raced["id"]):  # an edit commits before the escalation writes
            await session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(version=col(Task.version) + 1)
                .execution_options(synchronize_session=False)
            )
        return task

    monkeypatch.setattr(timers_repo, "claimed_task", edited_meanwhile)
    assert (await run_timers(ctx, MONDAY + timedelta(hours=1)))["breaches"] == 1
    assert [e.subject for e in await tasks.events("tasks.sla.breached")] == [calm["id"]]
    assert (await tasks.get(agent, calm["id"])).json()["priority"] == "normal"
    assert (await tasks.get(agent, raced["id"])).json()["priority"] == "low"
    monkeypatch.undo()
    assert (await run_timers(ctx, MONDAY + timedelta(hours=1)))["breaches"] == 1  # next run
    assert (await tasks.get(agent, raced["id"])).json()["priority"] == "normal"
    assert len(await tasks.events("tasks.sla.breached")) == 2
