"""What notifications does when events arrive.

``rules``: every event type the enabled plugins declare (except notifications'
own) goes through the rules engine and the webhook subscriptions. ``send``:
``notifications.deliveries.queued`` — after the engine's transaction committed —
sends that event's deliveries at once instead of waiting for the job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from crm2_hookspecs import EventHandler
from crm2_notifications.service import delivery, engine
from crm2_notifications.service.rules import declared_event_types

SEND_AT_ONCE = 20


def _envelope(event: Any) -> dict[str, Any]:
    return event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event)


async def _rules(session: Any, event: Any, context: Any) -> None:
    await engine.apply(session, context, _envelope(event), event.id)


async def _rules_batch(session: Any, events: Sequence[Any], context: Any) -> None:
    await engine.apply_batch(session, context, events, _envelope)


async def _nothing_for(session: Any, event: Any, context: Any) -> bool:
    return await engine.nothing_for(session, context, str(event.type), lambda: _envelope(event))


async def _send(session: Any, event: Any, context: Any) -> None:
    source = uuid.UUID(str(_envelope(event)["data"]["source_event_id"]))
    # a few at once (within the handler's time limit); a large fan-out's rest goes out
    # with the deliveries job. On PostgreSQL each send takes transactions of its own, so
    # its "in flight" is committed before its channel is called and a failure after the
    # send (the handler retried) never sends it again. SQLite has one writer, held by the
    # handler's claim: there the sends share the handler's transaction.
    own = session.get_bind().dialect.name == "postgresql"
    await delivery.send_due(
        context, event_id=source, session=None if own else session, limit=SEND_AT_ONCE
    )


def handlers(context: Any) -> list[EventHandler]:
    types = tuple(
        sorted(t for t in declared_event_types(context) if not t.startswith("notifications."))
    )
    found = [
        EventHandler(
            name="send",
            event_types=("notifications.deliveries.queued",),
            handle=_send,
            max_retries=3,
        )
    ]
    if types:
        found.append(
            EventHandler(
                name="rules",
                event_types=types,
                handle=_rules,
                handle_batch=_rules_batch,
                skips=_nothing_for,
                max_retries=8,
            )
        )
    return found
