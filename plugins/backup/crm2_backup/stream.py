"""The ``backup`` live channel: every ``backup.*`` event, for ``backup:read`` holders (admins)."""

from __future__ import annotations

from crm2_hookspecs import SseChannel


def channels() -> list[SseChannel]:
    return [SseChannel(name="backup", event_types=("backup.*",), permission="backup:read")]
