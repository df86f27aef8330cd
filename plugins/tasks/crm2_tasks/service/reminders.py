"""Reminders: armed from a task's offsets, fired exactly once by whichever scheduler claims them."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import NewRow, is_active_user, new_row, publish, user_permitted
from crm2_tasks import clock
from crm2_tasks.events import TaskReminderDue
from crm2_tasks.models import Reminder, Task
from crm2_tasks.repository import timers as repo

logger = logging.getLogger(__name__)


async def arm(session: AsyncSession, task: Task, now: datetime) -> None:
    """(Re)arm the task's reminders for its current due time.

    A reminder whose time has passed is not armed (it would fire at once for a
    task created late), and one that already fired for this due time never
    fires again, however often the task is edited. One already armed for this
    due time stays armed even when its time has come: the scheduler, running
    every minute or late, has yet to fire it.
    """
    if not task.is_open or task.due_at is None or not task.reminders:
        await repo.disarm_reminders(session, task.id)
        return
    fired, armed = await repo.task_reminders(session, task.id)
    current = set(_times(task))
    keep = {key for key in armed if key in current}
    wanted = [key for key in _ahead(task, now) if key not in fired and key not in keep]
    drop = [reminder_id for key, reminder_id in armed.items() if key not in keep]
    await repo.replace_reminders(session, task.id, drop, wanted)


def first_reminders(task: Task, now: datetime) -> list[NewRow]:
    """A new task's reminders, as rows to insert with it (none has fired yet)."""
    return [
        new_row(Reminder, task_id=task.id, minutes_before=minutes, remind_at=at)
        for minutes, at in _ahead(task, now)
    ]


def _times(task: Task) -> list[tuple[int, datetime]]:
    """``(minutes_before, remind_at)`` of each of the task's reminders for its due time."""
    if not task.is_open or task.due_at is None:
        return []
    times = []
    for minutes in sorted(set(task.reminders)):
        try:
            at = task.due_at - timedelta(minutes=minutes)
        except OverflowError:  # before year 1 (a row older than due_at's bounds): long past
            continue
        times.append((minutes, at))
    return times


def _ahead(task: Task, now: datetime) -> list[tuple[int, datetime]]:
    """``(minutes_before, remind_at)`` of each reminder still ahead for the task's due time."""
    return [(minutes, at) for minutes, at in _times(task) if at > now]


async def fire_due(context: Any, now: datetime | None = None) -> int:
    """Publish ``tasks.task.reminder_due`` for every reminder whose time came; returns how many.

    Safe to run twice, late or in several processes at once: each reminder is
    claimed by a conditional UPDATE and its event commits with the claim. A reminder
    whose assignee is deactivated or may no longer read tasks is claimed without an
    event, its ``skipped_reason`` recorded (an unassigned task's reminder still fires).
    """
    now = now or clock.now(context)
    batch: int = context.plugin_settings("tasks").timer_batch
    fired = 0
    while True:
        async with context.session_factory() as session:
            rows = await repo.due_reminders(session, now, batch)
            verdicts: dict[uuid.UUID, str | None] = {}  # assignee → skip reason, this batch
            for reminder, _read in rows:
                if not await repo.claim_reminder(session, reminder.id, now):
                    continue  # another scheduler fired it
                # for the assignee it has now: a reassignment may have committed since the read
                task = await repo.claimed_task(session, reminder.task_id)
                if task is None or task.due_at is None or not task.is_open:
                    continue
                assignee = task.assignee_id
                if assignee is not None and assignee not in verdicts:
                    verdicts[assignee] = await _skip_reason(session, context, assignee)
                reason = verdicts.get(assignee) if assignee is not None else None
                if reason is not None:
                    await repo.skip_reminder(session, reminder.id, reason)
                    logger.info("tasks: reminder %s of task %s: %s", reminder.id, task.id, reason)
                    continue
                event = TaskReminderDue(
                    title=task.title,
                    assignee_id=task.assignee_id,
                    creator_id=task.creator_id,
                    due_at=task.due_at,
                    minutes_before=reminder.minutes_before,
                    remind_at=reminder.remind_at,
                )
                publish(session, event, subject=task.id)
                fired += 1
            await session.commit()
        if len(rows) < batch:
            return fired


async def _skip_reason(session: AsyncSession, context: Any, assignee: uuid.UUID) -> str | None:
    """Why a reminder must not go to ``assignee`` (their account and roles as they are now)."""
    if await user_permitted(context, session, assignee, "tasks:read"):
        return None
    if not await is_active_user(session, assignee):
        return "assignee_inactive"
    return "assignee_cannot_read_tasks"
