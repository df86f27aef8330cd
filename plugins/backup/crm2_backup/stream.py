"""The ``backup`` live channel: every ``backup.*`` event, for holders of ``backup:read`` (admins)."""

from __future__ import annotations

from crm2_hookspecs import SseChannel


def channels() -> list[SseChannel]:
    return [SseChannel(name="backup", event_types=("backup.*",), permission="backup:read")]
