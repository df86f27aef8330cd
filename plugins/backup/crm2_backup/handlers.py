"""What backup does when events arrive: the scheduled backups and drills it queued itself.

They run here, in a worker (or in ``crm2 serve`` with the in-process broker),
under the handler's time limit (``CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS``), not the
scheduler's. Each claims its queued row first, so a redelivery does nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.service.backup import run_backup
from crm2_backup.service.retention import prune
from crm2_backup.service.verify import verify
from crm2_hookspecs import EventHandler

log = logging.getLogger("crm2.backup")


def _data(event: Any) -> dict[str, Any]:
    envelope = event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event)
    data = envelope.get("data")
    return dict(data) if isinstance(data, dict) else {}


def handlers(context: Any) -> list[EventHandler]:
    settings: BackupSettings = context.plugin_settings("backup")

    async def on_set_requested(session: Any, event: Any, ctx: Any) -> None:
        set_id = uuid.UUID(str(_data(event)["set_id"]))
        try:
            made = await run_backup(ctx, set_id=set_id)
        except Exception:
            # recorded as a failed set and announced (backup.set.failed); no retry
            # of a half-written set: the next due time makes a new one
            log.exception("backup: scheduled set %s failed", set_id)
            return
        if made is not None:
            await prune(ctx)

    async def on_drill_requested(session: Any, event: Any, ctx: Any) -> None:
        run_id = uuid.UUID(str(_data(event)["run_id"]))
        try:
            await verify(ctx, run_id=run_id)
        except Exception:
            log.exception("backup: scheduled drill %s could not run", run_id)

    limit = float(settings.command_timeout_seconds)
    return [
        EventHandler(
            name="run_requested_backup",
            event_types=("backup.set.requested",),
            handle=on_set_requested,
            max_retries=0,
            time_limit_seconds=limit,
        ),
        EventHandler(
            name="run_requested_drill",
            event_types=("backup.drill.requested",),
            handle=on_drill_requested,
            max_retries=0,
            time_limit_seconds=limit,
        ),
    ]
