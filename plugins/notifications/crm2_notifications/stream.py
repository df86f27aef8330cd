"""The ``notifications`` live channel: a user's own feed events, nobody else's."""

from __future__ import annotations

from crm2_hookspecs import SseChannel
from crm2_notifications.visibility import can_see


def channels() -> list[SseChannel]:
    return [
        SseChannel(
            name="notifications",
            event_types=("notifications.notification.*", "notifications.feed.*"),
            permission="notifications:read",
            can_see=can_see,
        )
    ]
