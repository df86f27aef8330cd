"""The ``deals`` live channel: every ``deals.*`` event, filtered by record visibility.

Every deals event carries ``owner_id`` in its data (see ``events.py``), so the
rule needs no database read per event (``RecordRules.can_see``).
"""

from __future__ import annotations

from crm2_deals.visibility import RULES
from crm2_hookspecs import SseChannel

can_see = RULES.can_see


def channels() -> list[SseChannel]:
    return [
        SseChannel(name="deals", event_types=("deals.*",), permission="deals:read", can_see=can_see)
    ]
