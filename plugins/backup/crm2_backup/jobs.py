"""Scheduled backups and drills through the core scheduler (``crm2_scheduled_jobs``).

The job wakes every ``CRM2_BACKUP_CHECK_SECONDS`` and asks each cron schedule
for its latest due time. A backup for a due time is a set row with that
``due_key`` (unique): however many processes look, one set is made per due
time, and a due time missed while nothing ran is made up once, not per
missed minute. A drill is a verify run carrying its due key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.cron import Cron
from crm2_backup.repository import drill_due_key_taken, set_due_key_taken
from crm2_backup.service.backup import request_backup
from crm2_backup.service.queued import run_queued_backup, run_queued_drill, runs_inline
from crm2_backup.service.stale import fail_stale_runs, fail_stale_sets
from crm2_backup.service.verify import request_drill
from crm2_core.api import utcnow
from crm2_hookspecs import ScheduledJob

# A due time older than this is not made up (a stopped deployment restarting a week later
# takes one backup now, at the next due time).
CATCH_UP = timedelta(hours=6)


def due(expression: str, now: datetime) -> str | None:
    if not expression:
        return None
    at = Cron.parse(expression).previous(now, within=CATCH_UP)
    return None if at is None else at.strftime("%Y-%m-%dT%H:%MZ")


async def tick(context: Any, now: datetime | None = None) -> dict[str, Any]:
    """Queue what is due at ``now``: a backup, a drill. Safe to run twice, in any process.

    The work itself runs in a worker's handler (``handlers.py``): the scheduler's
    time limit is for quick jobs, a backup may take an hour. On SQLite (one
    process, and a handler's open transaction holds the only write lock) it
    runs here instead.
    """
    settings: BackupSettings = context.plugin_settings("backup")
    now = now or utcnow()
    queued: dict[str, Any] = {}
    backup_key = due(settings.schedule, now)
    if backup_key is not None:
        async with context.session_factory() as session:
            taken = await set_due_key_taken(session, backup_key)
        if not taken and (set_id := await request_backup(context, backup_key)) is not None:
            queued["backup"] = str(set_id)
            if runs_inline(context):
                await run_queued_backup(context, set_id)
    drill_key = due(settings.verify_schedule, now)
    if drill_key is not None:
        async with context.session_factory() as session:
            taken = await drill_due_key_taken(session, drill_key)
        if not taken and (run_id := await request_drill(context, drill_key)) is not None:
            queued["drill"] = str(run_id)
            if runs_inline(context):
                await run_queued_drill(context, run_id)
    return queued


async def _scheduled(context: Any) -> None:
    await tick(context)


async def _stale(context: Any) -> None:
    await fail_stale_sets(context)
    await fail_stale_runs(context)


def scheduled_jobs(context: Any) -> list[ScheduledJob]:
    """The schedule (when there is one) and the sweep of sets a crashed process left behind."""
    settings: BackupSettings = context.plugin_settings("backup")
    jobs = [ScheduledJob(name="stale", interval_seconds=settings.check_seconds, run=_stale)]
    if settings.schedule or settings.verify_schedule:
        jobs.append(
            ScheduledJob(name="schedule", interval_seconds=settings.check_seconds, run=_scheduled)
        )
    return jobs
