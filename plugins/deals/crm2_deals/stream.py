"""The ``deals`` live channel: every ``deals.*`` event, filtered by record visibility.

Every deals event carries ``owner_id`` in its data (see ``events.py``), so the
rule needs no database read per event: holders of ``deals:all_records`` see
everything, anyone else only the events about records they own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm2_deals.visibility import Visibility
from crm2_hookspecs import Principal, SseChannel


def _data(event: Any) -> Mapping[str, Any]:
    data = event.get("data") if isinstance(event, Mapping) else getattr(event, "data", None)
    return data if isinstance(data, Mapping) else {}


async def can_see(principal: Principal, event: Any, context: Any = None) -> bool:
    """Whether ``principal`` may receive ``event`` (an envelope or its dict form)."""
    vis = Visibility.of(principal)
    if vis.owner_id is None:
        return True
    owner = _data(event).get("owner_id")
    return owner is not None and str(owner) == str(vis.owner_id)


def channels() -> list[SseChannel]:
    return [
        SseChannel(name="deals", event_types=("deals.*",), permission="deals:read", can_see=can_see)
    ]
