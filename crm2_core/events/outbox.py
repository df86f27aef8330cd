"""``publish(session, event)``: the event commits, or rolls back, with the change it describes."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.events.envelope import SYSTEM, Actor
from crm2_core.events.models import EventRecord
from crm2_core.events.types import EventData
from crm2_core.observability.propagation import current_traceparent
from crm2_hookspecs import Principal


def actor_of(principal: Principal | None) -> Actor:
    if principal is None:
        return SYSTEM
    return Actor(kind=principal.kind, id=str(principal.id))


def publish(
    session: AsyncSession,
    event: EventData,
    *,
    subject: uuid.UUID | str,
    actor: Principal | Actor | None = None,
) -> EventRecord:
    """Add the event to the session's transaction; nothing leaves the process before commit."""
    if not event.event_type:
        raise TypeError(f"{type(event).__name__} declares no event type")
    who = actor if isinstance(actor, Actor) else actor_of(actor)
    row = EventRecord(
        type=event.event_type,
        version=event.event_version,
        actor_kind=who.kind,
        actor_id=who.id,
        subject=str(subject),
        data=event.model_dump(mode="json"),
        trace_context=current_traceparent(),
    )
    session.add(row)
    # wakes the application's relay after commit (EventBus._after_commit)
    session.sync_session.info["crm2_events_pending"] = True
    return row
