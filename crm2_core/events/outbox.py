"""``publish(session, event)``: the event commits, or rolls back, with the change it describes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.db import new_id, utcnow
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


async def publish_many(
    session: AsyncSession,
    events: Iterable[tuple[EventData, uuid.UUID | str]],
    *,
    actor: Principal | Actor | None = None,
) -> int:
    """Many ``(event, subject)`` pairs in one multi-row INSERT, in order: what a bulk writer
    (an import) uses where ``publish`` would build one ORM object per event."""
    who = actor if isinstance(actor, Actor) else actor_of(actor)
    now, trace = utcnow(), current_traceparent()
    rows = []
    for event, subject in events:
        if not event.event_type:
            raise TypeError(f"{type(event).__name__} declares no event type")
        rows.append(
            {
                "id": new_id(),
                "type": event.event_type,
                "version": event.event_version,
                "occurred_at": now,
                "actor_kind": who.kind,
                "actor_id": who.id,
                "subject": str(subject),
                "data": event.model_dump(mode="json"),
                "trace_context": trace,
            }
        )
    if rows:
        await session.execute(insert(EventRecord), rows)
        session.sync_session.info["crm2_events_pending"] = True
    return len(rows)
