"""The ``tasks`` live channel: every ``tasks.*`` event, for the people the task concerns.

Holders of ``tasks:all_records`` see every event; anyone else the events of
tasks assigned to them or created by them (both travel in every event's data).
"""

from __future__ import annotations

from crm2_hookspecs import SseChannel
from crm2_tasks.visibility import can_see


def channels() -> list[SseChannel]:
    return [
        SseChannel(name="tasks", event_types=("tasks.*",), permission="tasks:read", can_see=can_see)
    ]
