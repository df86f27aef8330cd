"""The events the tasks plugin emits: its public, versioned contract.

Subject: the task's id. Every event carries ``assignee_id`` and ``creator_id``
so that the ``tasks`` stream decides who may see it without a database read.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from crm2_core.api import EventData


class _TaskEvent(EventData):
    title: str
    assignee_id: uuid.UUID | None
    creator_id: uuid.UUID | None


class TaskCreated(_TaskEvent, type="tasks.task.created", version=1):
    """A task was created (by a user, an automation rule or a recurring series)."""

    status: str
    priority: str
    due_at: datetime | None
    link_kind: str | None
    link_id: str | None
    series_id: uuid.UUID | None
    automation_rule_id: uuid.UUID | None
    # the link of a series (or of a rule) the task was made without: {"kind", "id", "reason"}
    link_dropped: dict[str, str] | None = None


class TaskUpdated(_TaskEvent, type="tasks.task.updated", version=1):
    """A task's fields changed; ``changed`` names them."""

    changed: list[str]


class TaskAssigned(_TaskEvent, type="tasks.task.assigned", version=1):
    """A task got another assignee (by a user or an SLA escalation)."""

    previous_assignee_id: uuid.UUID | None
    reason: str  # "manual" | "sla_escalation"


class TaskCompleted(_TaskEvent, type="tasks.task.completed", version=1):
    """A task was done; ``next_task_id`` is the next occurrence of its series, if any."""

    completed_at: datetime
    next_task_id: uuid.UUID | None


class TaskReopened(_TaskEvent, type="tasks.task.reopened", version=1):
    """A done or cancelled task is open again."""

    status: str


class TaskDeleted(_TaskEvent, type="tasks.task.deleted", version=1):
    """A task was deleted, with its reminders and SLA timers (one event per task: deleting
    with ``scope=following`` also deletes the series' later open occurrences)."""

    status: str
    series_id: uuid.UUID | None


class TaskReminderDue(_TaskEvent, type="tasks.task.reminder_due", version=1):
    """A reminder's time came: ``minutes_before`` the task's ``due_at``."""

    due_at: datetime
    minutes_before: int
    remind_at: datetime


class SlaWarning(_TaskEvent, type="tasks.sla.warning", version=1):
    """A share of an SLA target passed (``timer``: response | resolution)."""

    timer: str
    policy_id: uuid.UUID
    due_at: datetime


class SlaBreached(_TaskEvent, type="tasks.sla.breached", version=1):
    """An SLA target passed; ``escalation`` says what was done about it."""

    timer: str
    policy_id: uuid.UUID
    due_at: datetime
    escalation: list[str]


class AutomationRuleChanged(EventData, type="tasks.automation_rule.changed", version=1):
    """An automation rule was created, changed or deleted (``change``).

    Every process that applies rules keeps them cached and drops the cache when
    it hears this event (see ``crm2_tasks.service.rule_cache``).
    """

    rule_id: uuid.UUID
    name: str
    change: str  # "created" | "updated" | "deleted"
    assignee_id: uuid.UUID | None = None  # none: only holders of tasks:all_records see it
    creator_id: uuid.UUID | None = None


EVENT_TYPES: list[type[EventData]] = [
    TaskCreated,
    TaskUpdated,
    TaskAssigned,
    TaskCompleted,
    TaskReopened,
    TaskDeleted,
    TaskReminderDue,
    SlaWarning,
    SlaBreached,
    AutomationRuleChanged,
]
