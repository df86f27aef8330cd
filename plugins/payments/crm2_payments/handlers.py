"""What payments does when other plugins' events arrive: deals' policy events build, cancel
and hand over premium schedules; any record's ``*.updated``, ``*.assigned`` or
``*.reassigned`` moves the payments linked to it to its owner of now.

Subscribed by event type name; payments imports nothing of deals. With deals
disabled the types are not declared, no handler is registered and nothing runs.
"""

from __future__ import annotations

from typing import Any

from crm2_hookspecs import EventHandler
from crm2_payments.service import owners
from crm2_payments.service.schedules import EVENT_TYPES, POLICY_UPDATED, on_policy_event

# The verbs by which a record changes hands: deals' PATCH, client hand-over and a user's
# reassignment say ``updated`` (with ``owner_id`` in ``changed``); tasks says ``assigned``
# (by hand or by SLA escalation). Documents follows the same three.
OWNER_VERBS = ("updated", "assigned", "reassigned")


def declared_event_types(context: Any) -> set[str]:
    """Every event type the enabled plugins declare (``crm2_event_types``)."""
    return {
        cls.event_type
        for _plugin, classes in context.plugins.call("crm2_event_types")
        for cls in classes
    }


async def on_record_updated(session: Any, event: Any, context: Any) -> None:
    """Another plugin's record changed (``<plugin>.<entity>.<verb>``, a verb of
    ``OWNER_VERBS``): the payments linked to it follow its owner (``owners.follow_link``;
    idempotent)."""
    kind = ".".join(str(event.type).split(".")[:2])
    await owners.follow_link(session, context, kind, str(event.subject), dict(event.data))


def handlers(context: Any) -> list[EventHandler]:
    declared = declared_event_types(context)
    found: list[EventHandler] = []
    types = tuple(t for t in EVENT_TYPES if t in declared)
    if types:
        found.append(
            EventHandler(name="schedules", event_types=types, handle=on_policy_event, max_retries=8)
        )
    # a policy's own hand-over is the schedules handler's (instalments and links together)
    updates = tuple(
        sorted(
            t
            for t in declared
            if t.rsplit(".", 1)[-1] in OWNER_VERBS
            and not t.startswith("payments.")
            and t != POLICY_UPDATED
        )
    )
    if updates:
        found.append(
            EventHandler(
                name="follow_owner", event_types=updates, handle=on_record_updated, max_retries=8
            )
        )
    return found
