"""What payments does when deals' policy events arrive: build and cancel premium schedules.

Subscribed by event type name; payments imports nothing of deals. With deals
disabled the types are not declared, no handler is registered and nothing runs.
"""

from __future__ import annotations

from typing import Any

from crm2_hookspecs import EventHandler
from crm2_payments.service.schedules import EVENT_TYPES, on_policy_event


def declared_event_types(context: Any) -> set[str]:
    """Every event type the enabled plugins declare (``crm2_event_types``)."""
    return {
        cls.event_type
        for _plugin, classes in context.plugins.call("crm2_event_types")
        for cls in classes
    }


def handlers(context: Any) -> list[EventHandler]:
    types = tuple(t for t in EVENT_TYPES if t in declared_event_types(context))
    if not types:
        return []
    return [
        EventHandler(name="schedules", event_types=types, handle=on_policy_event, max_retries=8)
    ]
