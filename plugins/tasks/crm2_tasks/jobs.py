"""The timers job: reminders and SLA timers, through the core scheduler.

Every step is a conditional UPDATE that re-checks its condition (see
``repository.timers``), so running it twice, late, or in two processes at once
fires each reminder, warning and breach exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm2_hookspecs import ScheduledJob
from crm2_tasks import clock
from crm2_tasks.service import reminders, sla


async def run_timers(context: Any, now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now(context)
    fired = await reminders.fire_due(context, now)
    counts = await sla.check_timers(context, now)
    return {"reminders": fired, **counts}


async def _scheduled(context: Any) -> None:
    await run_timers(context)


def scheduled_jobs(context: Any) -> list[ScheduledJob]:
    interval: int = context.plugin_settings("tasks").timer_interval_seconds
    return [ScheduledJob(name="timers", interval_seconds=interval, run=_scheduled)]
