"""Which mode a user chose for a channel and an event type: the most specific preference wins."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from crm2_notifications.models import Preference

IMMEDIATE, DIGEST, OFF = "immediate", "digest", "off"
MODES = (IMMEDIATE, DIGEST, OFF)


class Modes:
    def __init__(self, rows: Iterable[Preference]) -> None:
        self._by = {(p.user_id, p.channel, p.event_type): p.mode for p in rows}

    def of(self, user_id: uuid.UUID, channel: str, event_type: str) -> str:
        for key in (
            (user_id, channel, event_type),
            (user_id, channel, "*"),
            (user_id, "*", event_type),
            (user_id, "*", "*"),
        ):
            mode = self._by.get(key)
            if mode is not None:
                return mode
        return IMMEDIATE
