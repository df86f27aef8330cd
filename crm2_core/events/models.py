"""The durable event log, which is also the outbox (``core_event``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Text
from sqlmodel import Field, SQLModel

from crm2_core.db import UtcDateTime, new_id, utcnow

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigIntegerId = BigInteger().with_variant(Integer(), "sqlite")


class EventRecord(SQLModel, table=True):
    """One event: written in the transaction of the change it describes.

    ``sequence`` orders writes; ``position`` is given by the relay when the
    event is forwarded, under a lock, so positions become visible strictly in
    order: it is the ``id:`` of SSE messages and what ``Last-Event-ID`` resumes from.
    """

    __tablename__ = "core_event"
    __table_args__ = (
        Index(
            "ix_core_event_unrelayed",
            "sequence",
            sqlite_where=Column("relayed_at").is_(None),
            postgresql_where=Column("relayed_at").is_(None),
        ),
        {"info": {"plugin": "core"}},
    )

    sequence: int | None = Field(
        default=None, sa_column=Column(BigIntegerId, primary_key=True, autoincrement=True)
    )
    id: uuid.UUID = Field(default_factory=new_id, unique=True)
    type: str = Field(max_length=128, index=True)
    version: int = 1
    occurred_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    subject: str = Field(max_length=128, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    position: int | None = Field(
        default=None, sa_column=Column(BigInteger, unique=True, nullable=True)
    )
    relayed_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    # W3C traceparent of the span that published it (CRM2_TRACING_ENABLED), so the
    # relay and the handlers continue the request's trace.
    trace_context: str | None = Field(default=None, max_length=128)


class AppliedEvent(SQLModel, table=True):
    """``(handler, event)`` pairs already applied; written in the handler's own transaction."""

    __tablename__ = "core_applied_event"
    __table_args__ = (Index(None, "handler", "subject"), {"info": {"plugin": "core"}})

    handler: str = Field(primary_key=True, max_length=100)
    event_id: uuid.UUID = Field(primary_key=True)
    subject: str = Field(max_length=128)
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    applied_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class DeadLetter(SQLModel, table=True):
    """An event a handler gave up on after its retries, or held behind an earlier event of
    its subject that is dead-lettered for the handler (``handlers.HeldBehindDeadLetter``).

    ``crm2 events dead-letters`` replays it (``retried_at``) or gives it up
    (``skipped_at``: settled without applying; later events of the subject go on).
    Neither set: it holds the later events of its subject for this handler.
    """

    __tablename__ = "core_dead_letter"
    __table_args__ = (Index(None, "handler", "event_id"), {"info": {"plugin": "core"}})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    handler: str = Field(max_length=100)
    event_id: uuid.UUID
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    attempts: int
    error: str = Field(max_length=2000)
    traceback: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    retried_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    skipped_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


class HandlerCursor(SQLModel, table=True):
    """Where a handler joined the log: it receives events after ``start_position`` only.

    ``delivered_through`` (RabbitMQ and Redis only): every event up to this position
    was handed to the handler's queue. The relay moves it along while it stays
    contiguous; events relayed by a process without the handler (its plugin switched
    off there) leave it behind, and a process that starts with the handler re-sends
    what lies after it (``dramatiq_broker.catch_up``). ``None``: not known yet.
    """

    __tablename__ = "core_handler_cursor"
    __table_args__ = {"info": {"plugin": "core"}}

    handler: str = Field(primary_key=True, max_length=100)
    start_position: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivered_through: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    registered_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


MODELS: list[type[SQLModel]] = [EventRecord, AppliedEvent, DeadLetter, HandlerCursor]
