"""``publish(session, event)``: the event commits, or rolls back, with the change it describes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.db import new_id, utcnow
from crm2_core.db.bulk import insert_rows
from crm2_core.db.together import NewRow, new_row
from crm2_core.events.envelope import SYSTEM, Actor
from crm2_core.events.models import EventRecord
from crm2_core.events.types import EventData
from crm2_core.observability.propagation import current_traceparent
from crm2_hookspecs import Principal


def actor_of(principal: Principal | None) -> Actor:
    if principal is None:
        return SYSTEM
    return Actor(kind=principal.kind, id=str(principal.id))


def _fields(
    event: EventData, subject: uuid.UUID | str, actor: Principal | Actor | None
) -> dict[str, Any]:
    if not event.event_type:
        raise TypeError(f"{type(event).__name__} declares no event type")
    who = actor if isinstance(actor, Actor) else actor_of(actor)
    return {
        "type": event.event_type,
        "version": event.event_version,
        "actor_kind": who.kind,
        "actor_id": who.id,
        "subject": str(subject),
        "data": event.model_dump(mode="json"),
        "trace_context": current_traceparent(),
    }


def _pending(session: AsyncSession) -> None:
    # wakes the application's relay after commit (EventBus._after_commit)
    session.sync_session.info["crm2_events_pending"] = True


def publish(
    session: AsyncSession,
    event: EventData,
    *,
    subject: uuid.UUID | str,
    actor: Principal | Actor | None = None,
) -> EventRecord:
    """Add the event to the session's transaction; nothing leaves the process before commit."""
    row = EventRecord(**_fields(event, subject, actor))
    session.add(row)
    _pending(session)
    return row


def publish_row(
    session: AsyncSession,
    event: EventData,
    *,
    subject: uuid.UUID | str,
    actor: Principal | Actor | None = None,
) -> NewRow:
    """The event's outbox row for ``insert_together``, which writes it in the statement
    that writes the change (``publish`` without an ORM object). Pass the row to
    ``insert_together`` in this transaction: nothing else writes it.
    """
    row = new_row(EventRecord, **_fields(event, subject, actor))
    _pending(session)
    return row


async def publish_many(
    session: AsyncSession,
    events: Iterable[tuple[EventData, uuid.UUID | str]],
    *,
    actor: Principal | Actor | None = None,
) -> int:
    """Many ``(event, subject)`` pairs written together, in order (``insert_rows``: a COPY
    on PostgreSQL): what a bulk writer (an import) uses where ``publish`` would build one
    ORM object per event."""
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
        await insert_rows(session, EventRecord.__table__, rows)  # type: ignore[attr-defined]
        session.sync_session.info["crm2_events_pending"] = True
    return len(rows)
