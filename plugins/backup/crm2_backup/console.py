"""The backup sections of the web console (``crm2_console_views``): sets and drills, for admins.

``screen="backup.sets"``: the console shows the status (latest set, RPO, last drill's RTO)
with "Back up now" and "Apply retention" above the sets list.
"""

from __future__ import annotations

from crm2_hookspecs import ConsoleView

VIEWS = (
    ConsoleView(
        key="backup.sets",
        title="Backups",
        titles={"ru": "Резервные копии"},
        list_path="/api/v1/backup/sets",
        item_path="/api/v1/backup/sets/{id}",
        permission="backup:read",
        write_permission="backup:run",
        item_schema="SetPublic",
        columns=("started_at", "status", "trigger", "targets", "size_bytes", "verify_ok"),
        filters=("status",),
        actions=("verify",),
        screen="backup.sets",
        stream="backup",
        order=900,
    ),
    ConsoleView(
        key="backup.drills",
        title="Restore drills",
        titles={"ru": "Проверки восстановления"},
        list_path="/api/v1/backup/drills",
        permission="backup:read",
        write_permission="backup:run",
        item_schema="DrillPublic",
        columns=("finished_at", "ok", "rto_seconds", "rpo_seconds", "set_id", "error"),
        filters=("set_id",),
        stream="backup",
        order=905,
    ),
)
