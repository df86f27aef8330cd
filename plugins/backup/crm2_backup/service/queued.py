"""Running what the schedule queued: a set (then retention) or a drill; never raises."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from crm2_backup.service.backup import run_backup
from crm2_backup.service.retention import prune
from crm2_backup.service.verify import verify

log = logging.getLogger("crm2.backup")


def runs_inline(context: Any) -> bool:
    """SQLite: the scheduler runs the work itself (see ``jobs.tick``); elsewhere a handler does."""
    return str(context.settings.database_url).startswith("sqlite")


async def run_queued_backup(context: Any, set_id: uuid.UUID) -> None:
    try:
        made = await run_backup(context, set_id=set_id)
    except Exception:
        # recorded as a failed set and announced (backup.set.failed); a half-written set
        # is not retried: the next due time makes a new one
        log.exception("backup: scheduled set %s failed", set_id)
        return
    if made is not None:
        await prune(context)


async def run_queued_drill(context: Any, run_id: uuid.UUID) -> None:
    try:
        await verify(context, run_id=run_id)
    except Exception:
        log.exception("backup: scheduled drill %s could not run", run_id)
