"""Reminders: armed from a task's offsets, fired exactly once by whichever scheduler claims them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import publish
from crm2_tasks import clock
from crm2_tasks.events import TaskReminderDue
from crm2_tasks.models import Task
from crm2_tasks.repository import timers as repo


async def arm(session: AsyncSession, task: Task, now: datetime) -> None:
    """(Re)arm the task's reminders for its current due time.

    A reminder whose time has passed is not armed (it would fire at once for a
    task created late), and one that already fired for this due time never
    fires again, however often the task is edited.
    """
    if not task.is_open or task.due_at is None or not task.reminders:
        await repo.disarm_reminders(session, task.id)
        return
    fired = await repo.fired_reminders(session, task.id)
    wanted = []
    for minutes in sorted(set(task.reminders)):
        at = task.due_at - timedelta(minutes=minutes)
        if at > now and (minutes, at) not in fired:
            wanted.append((minutes, at))
    await repo.replace_reminders(session, task.id, wanted)


async def fire_due(context: Any, now: datetime | None = None) -> int:
    """Publish ``tasks.task.reminder_due`` for every reminder whose time came; returns how many.

    Safe to run twice, late or in several processes at once: each reminder is
    claimed by a conditional UPDATE and its event commits with the claim.
    """
    now = now or clock.now(context)
    batch: int = context.plugin_settings("tasks").timer_batch
    fired = 0
    while True:
        async with context.session_factory() as session:
            rows = await repo.due_reminders(session, now, batch)
            for reminder, task in rows:
                if not await repo.claim_reminder(session, reminder.id, now):
                    continue  # another scheduler fired it
                if task.due_at is None or not task.is_open:
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
