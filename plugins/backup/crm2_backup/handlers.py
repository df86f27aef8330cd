"""What backup does when events arrive: the scheduled backups and drills it queued itself.

They run here, in a worker (or in ``crm2 serve`` with the in-process broker),
under the handler's time limit (``CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS``), not the
scheduler's. Each claims its queued row first, so a redelivery does nothing.
On SQLite the scheduler ran them already (``jobs.tick``): a handler's own
transaction would hold the database's only write lock for the whole backup.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.service.queued import run_queued_backup, run_queued_drill, runs_inline
from crm2_hookspecs import EventHandler


def _data(event: Any) -> dict[str, Any]:
    envelope = event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event)
    data = envelope.get("data")
    return dict(data) if isinstance(data, dict) else {}


async def on_set_requested(session: Any, event: Any, context: Any) -> None:
    if not runs_inline(context):
        data = _data(event)
        await run_queued_backup(
            context, uuid.UUID(str(data["set_id"])), and_verify=bool(data.get("verify"))
        )


async def on_drill_requested(session: Any, event: Any, context: Any) -> None:
    if not runs_inline(context):
        await run_queued_drill(context, uuid.UUID(str(_data(event)["run_id"])))


def handlers(context: Any) -> list[EventHandler]:
    settings: BackupSettings = context.plugin_settings("backup")
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
