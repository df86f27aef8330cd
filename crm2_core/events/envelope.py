"""The one envelope every event travels in: broker messages, SSE ``data:``, the log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Row

from crm2_core.events.models import EventRecord


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["user", "api_key", "system"] | str
    id: str | None = None


SYSTEM = Actor(kind="system")


class Envelope(BaseModel):
    """``id``, ``type``, ``version``, ``occurred_at``, ``actor``, ``subject``, ``data``.

    ``position`` is the event's place in the durable log once relayed (the SSE ``id:``).
    """

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    actor: Actor
    subject: str
    data: dict[str, Any]
    position: int | None = None
    # W3C traceparent of the publishing span, when traces are recorded
    trace_context: str | None = None

    @classmethod
    def from_record(cls, row: EventRecord | Row[Any]) -> Envelope:
        """From the log's ORM row, or a Core row of its columns (the relay's RETURNING)."""
        return cls(
            id=row.id,
            type=row.type,
            version=row.version,
            occurred_at=row.occurred_at,
            actor=Actor(kind=row.actor_kind, id=row.actor_id),
            subject=row.subject,
            data=row.data,
            position=row.position,
            trace_context=row.trace_context,
        )
