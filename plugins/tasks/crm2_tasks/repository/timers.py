"""Reminders and SLA timers: the rows the scheduler claims.

A claim is a conditional UPDATE (``… WHERE fired_at IS NULL``) whose row count
says whether this transaction won: on PostgreSQL a second claimer blocks on the
row lock, re-reads the condition after the winner commits and updates nothing;
on SQLite writers are serialised. The event is published in the same
transaction, so an event exists exactly when the claim committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_tasks.models import Reminder, SlaTimer, Task

# -- reminders -----------------------------------------------------------------------


async def replace_reminders(
    session: AsyncSession,
    task_id: uuid.UUID,
    drop: Iterable[uuid.UUID],
    items: Iterable[tuple[int, datetime]],
) -> None:
    """Drop the unfired reminders ``drop`` (ids) and arm ``(minutes_before, remind_at)``."""
    ids = list(drop)
    if ids:
        await session.execute(
            delete(Reminder).where(
                col(Reminder.id).in_(ids),
                col(Reminder.task_id) == task_id,
                col(Reminder.fired_at).is_(None),
            )
        )
    for minutes, at in items:
        session.add(Reminder(task_id=task_id, minutes_before=minutes, remind_at=at))


async def disarm_reminders(session: AsyncSession, task_id: uuid.UUID) -> None:
    await session.execute(
        delete(Reminder).where(col(Reminder.task_id) == task_id, col(Reminder.fired_at).is_(None))
    )


async def task_reminders(
    session: AsyncSession, task_id: uuid.UUID
) -> tuple[set[tuple[int, datetime]], dict[tuple[int, datetime], uuid.UUID]]:
    """The task's reminders as ``(minutes_before, remind_at)``: those that fired, and the
    unfired ones (armed, their time come or not) with their ids."""
    stmt = select(
        col(Reminder.id),
        col(Reminder.minutes_before),
        col(Reminder.remind_at),
        col(Reminder.fired_at),
    ).where(col(Reminder.task_id) == task_id)
    fired: set[tuple[int, datetime]] = set()
    armed: dict[tuple[int, datetime], uuid.UUID] = {}
    for id_, minutes, at, fired_at in (await session.execute(stmt)).all():
        if fired_at is None:
            armed[(minutes, at)] = id_
        else:
            fired.add((minutes, at))
    return fired, armed


async def due_reminders(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[Reminder, Task]]:
    stmt = (
        select(Reminder, Task)
        .join(Task, col(Task.id) == col(Reminder.task_id))
        .where(col(Reminder.fired_at).is_(None), col(Reminder.remind_at) <= now)
        .order_by(col(Reminder.remind_at), col(Reminder.id))
        .limit(limit)
    )
    return [(r, t) for r, t in (await session.execute(stmt)).all()]


async def claim_reminder(session: AsyncSession, reminder_id: uuid.UUID, now: datetime) -> bool:
    result = await session.execute(
        update(Reminder)
        .where(col(Reminder.id) == reminder_id, col(Reminder.fired_at).is_(None))
        .values(fired_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def skip_reminder(session: AsyncSession, reminder_id: uuid.UUID, reason: str) -> None:
    """A claimed reminder that sends nothing: why (it stays claimed, never retried)."""
    await session.execute(
        update(Reminder)
        .where(col(Reminder.id) == reminder_id)
        .values(skipped_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def claimed_task(session: AsyncSession, task_id: uuid.UUID) -> Task | None:
    """The task as committed now, read after a claim: the rows read before it may predate
    a reassignment, an edit or a completion that committed while this run was claiming."""
    return await session.get(Task, task_id, populate_existing=True)


# -- SLA timers ----------------------------------------------------------------------


async def timers_of(session: AsyncSession, task_id: uuid.UUID) -> list[SlaTimer]:
    stmt = (
        select(SlaTimer)
        .where(col(SlaTimer.task_id) == task_id)
        .order_by(col(SlaTimer.kind))
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def set_timer(session: AsyncSession, timer_id: uuid.UUID, values: Mapping[str, Any]) -> None:
    await session.execute(
        update(SlaTimer)
        .where(col(SlaTimer.id) == timer_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def delete_timer(session: AsyncSession, timer_id: uuid.UUID) -> None:
    await session.execute(delete(SlaTimer).where(col(SlaTimer.id) == timer_id))


def _running() -> tuple[Any, ...]:
    return (
        col(SlaTimer.stopped_at).is_(None),
        col(SlaTimer.paused_since).is_(None),
    )


async def due_warnings(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[SlaTimer, Task]]:
    stmt = (
        select(SlaTimer, Task)
        .join(Task, col(Task.id) == col(SlaTimer.task_id))
        .where(
            *_running(),
            col(SlaTimer.warned_at).is_(None),
            col(SlaTimer.breached_at).is_(None),
            col(SlaTimer.warn_at) <= now,
        )
        .order_by(col(SlaTimer.warn_at), col(SlaTimer.id))
        .limit(limit)
    )
    return [(s, t) for s, t in (await session.execute(stmt)).all()]


async def due_breaches(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[SlaTimer, Task]]:
    stmt = (
        select(SlaTimer, Task)
        .join(Task, col(Task.id) == col(SlaTimer.task_id))
        .where(*_running(), col(SlaTimer.breached_at).is_(None), col(SlaTimer.due_at) <= now)
        .order_by(col(SlaTimer.due_at), col(SlaTimer.id))
        .limit(limit)
    )
    return [(s, t) for s, t in (await session.execute(stmt)).all()]


async def claim_timer(
    session: AsyncSession, timer_id: uuid.UUID, column: str, now: datetime
) -> bool:
    """Set ``warned_at`` or ``breached_at`` if still unset and the timer still runs."""
    target = getattr(SlaTimer, column)
    result = await session.execute(
        update(SlaTimer)
        .where(col(SlaTimer.id) == timer_id, target.is_(None), *_running())
        .values({column: now})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
