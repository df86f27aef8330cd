"""The backup section of the web console (``crm2_console_views``): the sets, for admins."""

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
        item_schema="SetPublic",
        columns=("started_at", "status", "trigger", "targets", "size_bytes", "verify_ok"),
        filters=("status",),
        actions=("verify",),
        stream="backup",
        order=900,
    ),
)
