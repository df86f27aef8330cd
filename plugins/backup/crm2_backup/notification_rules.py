"""The notification rules backup ships for its own incidents (notifications' default-rules hook).

Plain data: backup does not import notifications, and where notifications is not
enabled nobody reads this. Stored once as ``backup:<key>``; admins may change or
disable them afterwards.
"""

from __future__ import annotations

from typing import Any

ADMINS = {"roles": ["admin"]}
CHANNELS = ["inapp", "email"]

RULES: list[dict[str, Any]] = [
    {
        "key": "backup-failed",
        "name": "Backup failed",
        "event_type": "backup.set.failed",
        "template": {
            "title": "Backup failed ({{ data.trigger }})",
            "body": "Backup set {{ subject }} failed: {{ data.error }}",
            "link": "/backup",
        },
        "recipients": ADMINS,
        "channels": CHANNELS,
    },
    {
        "key": "drill-failed",
        "name": "Restore drill failed",
        "event_type": "backup.set.verify_failed",
        "template": {
            "title": "Restore drill failed: the backup set cannot be trusted",
            "body": "The drill of backup set {{ subject }} failed: {{ data.error }}",
            "link": "/backup",
        },
        "recipients": ADMINS,
        "channels": CHANNELS,
    },
]
