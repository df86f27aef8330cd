"""The ``payments`` live channel (``GET /api/v1/streams/payments``): every ``payments.*`` event.

Holders of ``payments:all_records`` see every event; anyone else the events of
the payments they own (``owner_id`` travels in every event's data).
"""

from __future__ import annotations

from crm2_hookspecs import SseChannel
from crm2_payments.visibility import RULES


def channels() -> list[SseChannel]:
    return [
        SseChannel(
            name="payments",
            event_types=("payments.*",),
            permission="payments:read",
            can_see=RULES.can_see,
        )
    ]
