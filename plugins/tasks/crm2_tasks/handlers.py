"""What tasks does when other plugins' events arrive: apply the automation rules.

Tasks imports no other plugin. Its one handler subscribes to every event type
the enabled plugins declare (except tasks' own), and the rules stored in the
database decide what an event does. With deals disabled its events simply
never arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm2_hookspecs import EventHandler
from crm2_tasks.service.automations import (
    apply_rules,
    apply_rules_to_batch,
    declared_event_types,
    no_rule_applies,
)


def _envelope(event: Any) -> dict[str, Any]:
    return event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event)


async def _apply(session: Any, event: Any, context: Any) -> None:
    position = getattr(event, "position", None)
    await apply_rules(session, context, _envelope(event), event.id, position)


async def _skips(session: Any, event: Any, context: Any) -> bool:
    position = getattr(event, "position", None)
    return await no_rule_applies(
        session, context, str(event.type), position, lambda: _envelope(event)
    )


async def _apply_batch(session: Any, events: Sequence[Any], context: Any) -> None:
    await apply_rules_to_batch(session, context, events, _envelope)


def handlers(context: Any) -> list[EventHandler]:
    types = tuple(sorted(t for t in declared_event_types(context) if not t.startswith("tasks.")))
    if not types:
        return []
    return [
        EventHandler(
            name="automations",
            event_types=types,
            handle=_apply,
            handle_batch=_apply_batch,
            skips=_skips,
            max_retries=8,
        )
    ]
