"""SLA timers of tasks: started on creation, paused while waiting, warned and breached once.

Timers change in the task's own transaction (status changes) or in the
scheduler's claims (``repository.timers``), never elsewhere.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import NewRow, PreconditionFailed, new_row, publish
from crm2_tasks import clock, sla
from crm2_tasks.calendar import BusinessCalendar, CalendarError
from crm2_tasks.events import SlaBreached, SlaWarning, TaskAssigned, TaskUpdated
from crm2_tasks.models import SlaPolicy, SlaTimer, Task
from crm2_tasks.repository import admin as admin_repo
from crm2_tasks.repository import tasks as task_repo
from crm2_tasks.repository import timers as repo
from crm2_tasks.service import assignees
from crm2_tasks.service.calendars import business_calendar

CLOSED = ("done", "cancelled")
logger = logging.getLogger(__name__)


async def _calendar(
    session: AsyncSession, context: Any, calendar_id: uuid.UUID | None, task_id: uuid.UUID
) -> BusinessCalendar | None:
    try:
        return await business_calendar(session, context, calendar_id)
    except CalendarError as exc:  # a stored calendar from before its checks
        logger.warning(
            "tasks: task %s: calendar %s unusable, no SLA timer: %s", task_id, calendar_id, exc
        )
        return None


def _plan(
    calendar: BusinessCalendar,
    task_id: uuid.UUID,
    kind: str,
    started: datetime,
    target: timedelta,
    share: float | None,
    paused: timedelta = timedelta(0),
) -> sla.TimerPlan | None:
    """``sla.plan``, or ``None`` when the calendar has no working time that far ahead: a
    policy is checked when saved, but must never make a task write fail anyway."""
    try:
        return sla.plan(calendar, started, target, share, paused)
    except (CalendarError, OverflowError) as exc:
        logger.warning("tasks: task %s: %s timer cannot be planned: %s", task_id, kind, exc)
        return None


async def first_timers(
    session: AsyncSession, context: Any, task: Task, now: datetime
) -> list[NewRow]:
    """The timers a new task starts with: its policy's (the most specific active one), as
    rows to insert with it. Reads only, in plain reads (no ``BEGIN`` of their own)."""
    policies = await admin_repo.plain_rows(session, SlaPolicy)
    policy = sla.choose_policy(policies, task.priority, task.tags)
    if policy is None:
        return []
    calendar = await _calendar(session, context, policy.calendar_id, task.id)
    if calendar is None:
        return []
    share = policy.warning_share or context.plugin_settings("tasks").sla_warning_share
    targets = {"response": policy.response_minutes, "resolution": policy.resolution_minutes}
    if task.status != "todo":
        targets["response"] = None  # created already moving: responded at once
    # created waiting: the resolution clock starts paused, as if it had just begun waiting
    paused_since = now if task.status == "waiting" else None
    rows = []
    for kind, minutes in targets.items():
        if not minutes:
            continue
        target = timedelta(minutes=minutes)
        values = _timer_values(calendar, task, policy, kind, now, target, share, paused_since)
        if values is not None:
            rows.append(new_row(SlaTimer, **values))
    return rows


def _timer_values(
    calendar: BusinessCalendar,
    task: Task,
    policy: SlaPolicy,
    kind: str,
    started: datetime,
    target: timedelta,
    share: float | None,
    paused_since: datetime | None = None,
) -> dict[str, Any] | None:
    plan = _plan(calendar, task.id, kind, started, target, share)
    if plan is None:
        return None
    return {
        "task_id": task.id,
        "policy_id": policy.id,
        "calendar_id": policy.calendar_id,
        "kind": kind,
        "started_at": started,
        "target_seconds": int(target.total_seconds()),
        "warning_share": share,
        "warn_at": plan.warn_at,
        "due_at": plan.due_at,
        "paused_since": paused_since,
    }


async def on_classification(session: AsyncSession, context: Any, task: Task, now: datetime) -> None:
    """The task's priority or tags changed: its live timers follow the policy that fits now.

    Targets count from the timer's start (a task raised to urgent after an hour has
    an hour less to go); paused time still counts as paused. Timers that already
    stopped or breached are history and stay as they are; a warning already sent is
    not sent again. A task that had no policy starts its timers now.
    """
    policies = await admin_repo.all_rows(session, SlaPolicy)
    policy = sla.choose_policy(policies, task.priority, task.tags)
    timers = {timer.kind: timer for timer in await repo.timers_of(session, task.id)}
    if policy is not None and all(t.policy_id == policy.id for t in timers.values()) and timers:
        return
    targets = {
        "response": policy.response_minutes if policy else None,
        "resolution": policy.resolution_minutes if policy else None,
    }
    started = min((t.started_at for t in timers.values()), default=now)
    for kind, minutes in targets.items():
        timer = timers.get(kind)
        if timer is not None and (timer.stopped_at is not None or timer.breached_at is not None):
            continue
        if not minutes or policy is None:
            if timer is not None:
                await repo.delete_timer(session, timer.id)
            continue
        calendar = await _calendar(session, context, policy.calendar_id, task.id)
        if calendar is None:
            continue
        share = policy.warning_share or context.plugin_settings("tasks").sla_warning_share
        target = timedelta(minutes=minutes)
        if timer is None:
            if kind == "response" and task.status != "todo":
                continue  # already responded, under whichever policy
            paused_since = now if task.status == "waiting" else None
            fresh = _timer_values(
                calendar, task, policy, kind, started, target, share, paused_since
            )
            if fresh is not None:
                session.add(SlaTimer(**fresh))
            continue
        paused = timedelta(seconds=timer.paused_seconds)
        plan = _plan(calendar, task.id, kind, timer.started_at, target, share, paused)
        if plan is None:
            continue  # the timer keeps its previous policy and deadlines
        values: dict[str, Any] = {
            "policy_id": policy.id,
            "calendar_id": policy.calendar_id,
            "target_seconds": int(target.total_seconds()),
            "warning_share": share,
            "warn_at": plan.warn_at,
            "due_at": plan.due_at,
        }
        await repo.set_timer(session, timer.id, values)


async def _replan(
    session: AsyncSession, context: Any, timer: SlaTimer, paused: timedelta
) -> dict[str, Any]:
    calendar = await _calendar(session, context, timer.calendar_id, timer.task_id)
    if calendar is None:
        return {}  # the timer keeps its deadlines
    target = timedelta(seconds=timer.target_seconds)
    share = timer.warning_share
    plan = _plan(calendar, timer.task_id, timer.kind, timer.started_at, target, share, paused)
    if plan is None:
        return {}  # the timer keeps its deadlines
    return {"warn_at": plan.warn_at, "due_at": plan.due_at}


async def on_status(
    session: AsyncSession, context: Any, task: Task, old: str, new: str, now: datetime
) -> None:
    """Stop, pause or resume the task's timers for a status change ``old`` → ``new``."""
    if old == new:
        return
    for timer in await repo.timers_of(session, task.id):
        values: dict[str, Any] = {}
        if timer.kind == "response":
            if old == "todo" and timer.stopped_at is None:
                values["stopped_at"] = now
        elif new in CLOSED and timer.stopped_at is None:
            if timer.paused_since is not None:  # closed while waiting: the pause ends here
                values.update(await _resume(session, context, timer, timer.paused_since, now))
            values["stopped_at"] = now
        elif old in CLOSED and timer.stopped_at is not None:
            # reopened: the closed spell counts like a pause, the clock runs on
            values.update(await _resume(session, context, timer, timer.stopped_at, now))
            values["stopped_at"] = None
            if new == "waiting":
                values["paused_since"] = now
        elif new == "waiting" and timer.paused_since is None and timer.stopped_at is None:
            values["paused_since"] = now
        elif old == "waiting" and timer.paused_since is not None:
            values.update(await _resume(session, context, timer, timer.paused_since, now))
        if values:
            await repo.set_timer(session, timer.id, values)


async def _resume(
    session: AsyncSession, context: Any, timer: SlaTimer, since: datetime, now: datetime
) -> dict[str, Any]:
    calendar = await _calendar(session, context, timer.calendar_id, timer.task_id)
    paused = timedelta(seconds=timer.paused_seconds)
    if calendar is not None:
        paused = sla.paused_after_resume(calendar, paused, since, now)
    values = await _replan(session, context, timer, paused)
    values.update(paused_seconds=int(paused.total_seconds()), paused_since=None)
    return values


def _identity(task: Task) -> dict[str, Any]:
    return {"title": task.title, "assignee_id": task.assignee_id, "creator_id": task.creator_id}


async def check_timers(context: Any, now: datetime | None = None) -> dict[str, int]:
    """Emit due warnings and breaches, each exactly once; escalate breaches."""
    now = now or clock.now(context)
    batch: int = context.plugin_settings("tasks").timer_batch
    counts = {"warnings": 0, "breaches": 0}
    while True:
        async with context.session_factory() as session:
            rows = await repo.due_warnings(session, now, batch)
            for timer, _read in rows:
                if await repo.claim_timer(session, timer.id, "warned_at", now):
                    task = await repo.claimed_task(session, timer.task_id)
                    if task is None:
                        continue
                    event = SlaWarning(
                        timer=timer.kind,
                        policy_id=timer.policy_id,
                        due_at=timer.due_at,
                        **_identity(task),
                    )
                    publish(session, event, subject=task.id)
                    counts["warnings"] += 1
            await session.commit()
        if len(rows) < batch:
            break
    while True:
        async with context.session_factory() as session:
            rows = await repo.due_breaches(session, now, batch)
            for timer, _read in rows:
                if await _claim_breach(session, context, timer, now):
                    counts["breaches"] += 1
            await session.commit()
        if len(rows) < batch:
            break
    return counts


# An escalation that loses the race with an edit reads the task again this often before it
# leaves the breach to the next run.
ESCALATION_ATTEMPTS = 3


async def _claim_breach(
    session: AsyncSession, context: Any, timer: SlaTimer, now: datetime
) -> bool:
    """Claim one breach and escalate it in a savepoint of its own: an edit that commits
    between the task's read and the escalation's versioned write undoes this breach's
    claim and events only (tried again on a fresh read, else left unclaimed for the next
    run), never the other breaches of the batch."""
    for _ in range(ESCALATION_ATTEMPTS):
        try:
            async with session.begin_nested():
                if not await repo.claim_timer(session, timer.id, "breached_at", now):
                    return False  # another scheduler breached it, or it stopped
                # as committed now: its assignee, priority and version (the escalation's
                # write is versioned)
                task = await repo.claimed_task(session, timer.task_id)
                if task is None:
                    return False
                await _breach(session, context, timer, task, now)
                return True
        except PreconditionFailed:
            continue  # the savepoint is rolled back: the claim too
    logger.warning(
        "tasks: SLA breach of task %s kept racing edits; left for the next run", timer.task_id
    )
    return False


async def _breach(
    session: AsyncSession, context: Any, timer: SlaTimer, task: Task, now: datetime
) -> None:
    policy = await admin_repo.get(session, SlaPolicy, timer.policy_id)
    previous = task.assignee_id
    values: dict[str, Any] = {}
    done: list[str] = []
    if policy is not None and task.is_open:
        # an escalation target who could not see the task is skipped, and the breach says
        # why: the user's reason, or a role none of whose active users may read tasks
        target = policy.escalate_to_user_id
        if target is not None:
            reason = await assignees.refusal(session, target)
            if reason is not None:
                done.append(f"skipped:{target}:{reason}")
                target = None
        if target is None and policy.escalate_to_role:
            role = policy.escalate_to_role
            target = await admin_repo.least_busy_with_role(session, role, assignees.READ)
            if target is None:
                done.append(f"skipped:role:{role}:no_active_user_with_tasks_read")
        if target is not None and target != previous:
            values["assignee_id"] = target
            done.append(f"reassigned:{target}")
        if policy.escalate_raise_priority and sla.raised(task.priority) != task.priority:
            values["priority"] = sla.raised(task.priority)
            done.append(f"priority:{values['priority']}")
    if values:
        # the escalation wins over a concurrent edit: no If-Match, but a version bump
        await task_repo.update_task(session, task, values, task.version)
    publish(
        session,
        SlaBreached(
            timer=timer.kind,
            policy_id=timer.policy_id,
            due_at=timer.due_at,
            escalation=done,
            **_identity(task),
        ),
        subject=task.id,
    )
    if "assignee_id" in values:
        assigned = TaskAssigned(
            previous_assignee_id=previous, reason="sla_escalation", **_identity(task)
        )
        publish(session, assigned, subject=task.id)
    if "priority" in values:
        publish(session, TaskUpdated(changed=["priority"], **_identity(task)), subject=task.id)
