"""The tasks plugin's tables (``tasks_*``).

Links to other plugins' records are a kind and an id as text
(``"deals.deal"``, ``"…uuid…"``), never a foreign key: tasks does not depend
on deals and checks a link through ``crm2_resolve_entity`` instead.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlmodel import Field, SQLModel

from crm2_core.api import UtcDateTime, new_id, utcnow

INFO = {"plugin": "tasks"}
STATUSES = ("todo", "in_progress", "waiting", "done", "cancelled")
OPEN_STATUSES = ("todo", "in_progress", "waiting")
PRIORITIES = ("low", "normal", "high", "urgent")
# The sort key of a task without a due date: after every real one.
NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Column(UtcDateTime(), nullable=nullable, index=index)


def _user(nullable: bool = True, ondelete: str = "SET NULL") -> Any:
    return Column(ForeignKey("auth_user.id", ondelete=ondelete), nullable=nullable)


def name_key(name: str) -> str:
    """What makes two admin names one: NFC, then case-folded ("Élan" is "élan", "Straße"
    is "STRASSE"). Stored in ``name_key`` with a unique constraint, so the database itself
    refuses the second of two racing creates."""
    return unicodedata.normalize("NFC", name).casefold()


def _insert_key(context: DefaultExecutionContext) -> str:
    parameters: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return name_key(parameters["name"])


def _name_key() -> Any:
    # filled on INSERT from ``name``; a rename sets it too (``repository.admin.update``)
    return Column(String(800), nullable=False, unique=True, default=_insert_key)


class Series(SQLModel, table=True):
    """A recurring task: an RRULE from ``start_at`` in ``timezone`` and the template of its
    occurrences. Only the current occurrence exists as a task; completing it creates the next."""

    __tablename__ = "tasks_series"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    rule: str = Field(max_length=500)
    timezone: str = Field(max_length=64)
    start_at: datetime = Field(sa_column=_ts())
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Task(SQLModel, table=True):
    __tablename__ = "tasks_task"
    __table_args__ = (
        # "my open tasks by due date": one index range scan
        Index(None, "assignee_id", "is_open", "due_key", "id"),
        Index(None, "creator_id", "is_open", "due_key", "id"),
        Index(None, "is_open", "due_key", "id"),
        Index(None, "updated_at", "id"),
        Index(None, "link_kind", "link_id"),
        UniqueConstraint("series_id", "occurrence_at"),
        # exactly one task per (rule, event) however often the event is delivered
        UniqueConstraint("automation_rule_id", "source_event_id"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default="todo", max_length=16)
    is_open: bool = True
    priority: str = Field(default="normal", max_length=16)
    assignee_id: uuid.UUID | None = Field(default=None, sa_column=_user())
    creator_id: uuid.UUID | None = Field(default=None, sa_column=_user())
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    due_key: datetime = Field(default=NO_DUE, sa_column=_ts())
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    checklist: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    reminders: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    link_kind: str | None = Field(default=None, max_length=64)
    link_id: str | None = Field(default=None, max_length=64)
    series_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("tasks_series.id", ondelete="SET NULL"), nullable=True),
    )
    # the occurrence this task is (RFC 5545 RECURRENCE-ID): the rule's time, even if moved
    occurrence_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    automation_rule_id: uuid.UUID | None = None
    source_event_id: uuid.UUID | None = None
    completed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # lower-cased title and description: what `q` searches
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Reminder(SQLModel, table=True):
    """One reminder of a task; ``fired_at`` is set by the one scheduler run that fires it.

    ``skipped_reason`` says why that run sent nothing: ``assignee_inactive``,
    ``assignee_cannot_read_tasks``.
    """

    __tablename__ = "tasks_reminder"
    __table_args__ = (Index(None, "fired_at", "remind_at"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    task_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("tasks_task.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    minutes_before: int
    remind_at: datetime = Field(sa_column=_ts())
    fired_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    skipped_reason: str | None = Field(default=None, max_length=64)


class Calendar(SQLModel, table=True):
    """A business calendar: working hours per weekday in a zone, and holidays."""

    __tablename__ = "tasks_calendar"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    name_key: str = Field(default=None, sa_column=_name_key())
    timezone: str = Field(max_length=64)
    hours: dict[str, list[list[str]]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    holidays: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class SlaPolicy(SQLModel, table=True):
    __tablename__ = "tasks_sla_policy"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    name_key: str = Field(default=None, sa_column=_name_key())
    priority: str | None = Field(default=None, max_length=16)
    tag: str | None = Field(default=None, max_length=64)
    calendar_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("tasks_calendar.id", ondelete="RESTRICT"), nullable=True),
    )
    response_minutes: int | None = None
    resolution_minutes: int | None = None
    warning_share: float | None = None
    escalate_to_user_id: uuid.UUID | None = Field(default=None, sa_column=_user())
    escalate_to_role: str | None = Field(default=None, max_length=64)
    escalate_raise_priority: bool = False
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class SlaTimer(SQLModel, table=True):
    """One running SLA target of a task (``kind``: response | resolution).

    ``paused_seconds`` is business time spent waiting; ``warned_at`` / ``breached_at``
    are set by the one scheduler run that emits the event.
    """

    __tablename__ = "tasks_sla_timer"
    __table_args__ = (
        UniqueConstraint("task_id", "kind"),
        Index(None, "due_at"),
        Index(None, "warn_at"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    task_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tasks_task.id", ondelete="CASCADE"), nullable=False)
    )
    policy_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tasks_sla_policy.id", ondelete="CASCADE"), nullable=False)
    )
    calendar_id: uuid.UUID | None = None
    kind: str = Field(max_length=16)
    started_at: datetime = Field(sa_column=_ts())
    target_seconds: int
    warning_share: float | None = None
    paused_seconds: int = 0
    paused_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    warn_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    due_at: datetime = Field(sa_column=_ts())
    warned_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    breached_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    stopped_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AutomationRule(SQLModel, table=True):
    """``on`` an event type, ``when`` conditions hold, ``create_task`` from templates."""

    __tablename__ = "tasks_rule"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    name_key: str = Field(default=None, sa_column=_name_key())
    on_event: str = Field(max_length=100, index=True)
    conditions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    action: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = False
    # shipped rules carry a key, so that seeding them twice adds nothing
    builtin_key: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class FeedToken(SQLModel, table=True):
    """A user's iCalendar feed token (stored hashed); deleting it revokes the feed."""

    __tablename__ = "tasks_feed_token"
    __table_args__ = {"info": INFO}

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True)
    )
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


MODELS: list[type[SQLModel]] = [
    Series,
    Task,
    Reminder,
    Calendar,
    SlaPolicy,
    SlaTimer,
    AutomationRule,
    FeedToken,
]
