"""Request and response bodies for tasks: Base / Create / Update / Public, limits written once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, field_validator

from crm2_core.api import (
    HIDDEN_BMP,
    Clearable,
    EntityLink,
    RequestModel,
    ResponseModel,
    UpdateModel,
    refuse_hidden,
)
from crm2_tasks.calendar import known_zone

Priority = Literal["low", "normal", "high", "urgent"]
OpenStatus = Literal["todo", "in_progress", "waiting"]
Status = Literal["todo", "in_progress", "waiting", "done", "cancelled"]
Title = Annotated[str, Field(min_length=1, max_length=300)]
Description = Annotated[str, Field(max_length=20_000)]
# The document states the server's rule (a fuzzer must not meet a 422 for a tag it was
# told is valid): no hidden character, a joiner only before a visible one.
_H, _Z = HIDDEN_BMP, "\\u200c\\u200d"
_TAG_PATTERN_DOC = rf"^[^\s,;{_H}{_Z}](?:[^,;{_H}{_Z}]|[{_Z}](?=[^,;{_H}]*[^\s,;{_H}{_Z}]))*$"


def _visible_tag(tag: str) -> str:
    return refuse_hidden(tag, f"the tag {tag!r}")


Tag = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\s,;][^,;]*$",
        json_schema_extra={"pattern": _TAG_PATTERN_DOC},
    ),
    AfterValidator(_visible_tag),
]
Tags = Annotated[list[Tag], Field(max_length=20, json_schema_extra={"uniqueItems": True})]
# minutes before the due time; up to a year
Reminders = Annotated[
    list[Annotated[int, Field(ge=0, le=525_600)]],
    Field(max_length=10, json_schema_extra={"uniqueItems": True}),
]
Rule = Annotated[str, Field(min_length=6, max_length=500, description="an RFC 5545 RRULE")]
Zone = Annotated[
    str,
    Field(min_length=1, max_length=64, description="IANA time zone"),
    AfterValidator(known_zone),
]
# Far from datetime's limits: a reminder before it or the calendar feed's event after it
# must stay computable, and "no due time" sorts as 9999-12-31 (models.NO_DUE).
EARLIEST_DUE = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_DUE = datetime(3000, 1, 1, tzinfo=UTC)


def _due_in_range(value: datetime) -> datetime:
    if not EARLIEST_DUE <= value < LATEST_DUE:
        raise ValueError("must be between 1900-01-01 and 2999-12-31")
    return value


DueAt = Annotated[
    AwareDatetime,
    AfterValidator(_due_in_range),
    Field(description="with a zone, e.g. …T17:00:00+02:00; years 1900-2999"),
]


class ChecklistItemIn(RequestModel):
    text: str = Field(min_length=1, max_length=500)
    done: bool = False


Checklist = Annotated[list[ChecklistItemIn], Field(max_length=100)]


def _unique(values: list[str] | list[int] | None) -> list[str] | list[int] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("values must be unique")
    return values


class TaskCreate(RequestModel):
    title: Title
    description: Description = ""
    assignee_id: uuid.UUID | None = Field(None, description="default: the caller")
    due_at: DueAt | None = None
    priority: Priority = "normal"
    status: OpenStatus = "todo"
    tags: Tags = []
    checklist: Checklist = []
    link: EntityLink | None = None
    reminders: Reminders = Field([], description="minutes before due_at")
    recurrence: Rule | None = Field(None, description="e.g. FREQ=WEEKLY;BYDAY=MO; needs due_at")
    timezone: Zone | None = Field(
        None, description="of the recurrence; default CRM2_TASKS_TIMEZONE"
    )

    _tags = field_validator("tags", "reminders")(_unique)


class TaskUpdate(UpdateModel):
    """Only the fields sent change; ``null`` clears ``due_at`` and is refused elsewhere. On a
    recurring task ``scope`` says which occurrences: ``this`` (this one only) or
    ``following`` (this one and the ones after it)."""

    title: Title | None = None
    description: Description | None = None
    due_at: Annotated[DueAt | None, Clearable] = None
    priority: Priority | None = None
    status: Literal["todo", "in_progress", "waiting", "cancelled"] | None = None
    tags: Tags | None = None
    checklist: Checklist | None = None
    link: EntityLink | None = None
    unlink: bool = Field(False, description="remove the link")
    reminders: Reminders | None = None
    recurrence: Rule | None = Field(None, description="only with scope=following")
    scope: Literal["this", "following"] = "this"

    _tags = field_validator("tags", "reminders")(_unique)


class TaskAssign(RequestModel):
    assignee_id: uuid.UUID | None = Field(description="null: unassigned")


class ChecklistItem(ResponseModel):
    text: str
    done: bool


class LinkPublic(ResponseModel):
    kind: str
    id: str


class TaskPublic(ResponseModel):
    id: uuid.UUID
    title: str
    description: str
    status: Status
    priority: Priority
    assignee_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    due_at: datetime | None
    overdue: bool
    tags: list[str]
    checklist: list[ChecklistItem]
    reminders: list[int]
    link: LinkPublic | None
    series_id: uuid.UUID | None
    occurrence_at: datetime | None
    automation_rule_id: uuid.UUID | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class SlaTimerPublic(ResponseModel):
    kind: str
    policy_id: uuid.UUID
    started_at: datetime
    target_seconds: int
    warn_at: datetime | None
    due_at: datetime
    paused_since: datetime | None
    paused_seconds: int
    warned_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None


class FeedPublic(ResponseModel):
    url: str = Field(description="the feed's address; shown once, keep it secret")
