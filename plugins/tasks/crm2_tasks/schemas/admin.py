"""Request and response bodies for calendars, SLA policies and automation rules (admin)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, computed_field

from crm2_core.api import Clearable, RequestModel, ResponseModel, UpdateModel
from crm2_tasks.calendar import zone_problems
from crm2_tasks.schemas.tasks import Priority, Tag, Zone

Name = Annotated[str, Field(min_length=1, max_length=200)]
HHMM = Annotated[str, Field(pattern=r"^[0-9][0-9]:[0-9][0-9]$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Hours = Annotated[
    dict[Weekday, Annotated[list[tuple[HHMM, HHMM]], Field(max_length=8)]],
    Field(description='{"mon": [["09:00", "17:00"]], …}; a missing day is closed'),
]
Holidays = Annotated[list[date], Field(max_length=1000)]
Minutes = Annotated[int, Field(ge=1, le=525_600)]
Share = Annotated[float, Field(gt=0, lt=1)]
EventType = Annotated[
    str, Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
]


class CalendarCreate(RequestModel):
    name: Name
    timezone: Zone
    hours: Hours
    holidays: Holidays = []


class CalendarUpdate(UpdateModel):
    name: Name | None = None
    timezone: Zone | None = None
    hours: Hours | None = None
    holidays: Holidays | None = None


class CalendarPublic(ResponseModel):
    id: uuid.UUID
    name: str
    timezone: str
    hours: dict[str, list[list[str]]]
    holidays: list[str]
    created_at: datetime
    updated_at: datetime
    version: int

    @computed_field(  # type: ignore[prop-decorator]
        description="why the calendar's stored time zone would be refused now (one saved "
        "before host-dependent and placeholder zones were): empty when none; set timezone"
    )
    @property
    def problems(self) -> list[str]:
        return zone_problems(self.timezone)


class SlaPolicyCreate(RequestModel):
    name: Name
    priority: Priority | None = Field(None, description="null: any priority")
    tag: Tag | None = Field(None, description="null: any tags")
    calendar_id: uuid.UUID | None = Field(None, description="null: the built-in calendar")
    response_minutes: Minutes | None = Field(None, description="business minutes to leave todo")
    resolution_minutes: Minutes | None = Field(None, description="business minutes to be done")
    warning_share: Share | None = Field(None, description="default CRM2_TASKS_SLA_WARNING_SHARE")
    escalate_to_user_id: uuid.UUID | None = None
    escalate_to_role: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    escalate_raise_priority: bool = False
    active: bool = True


class SlaPolicyUpdate(UpdateModel):
    """Only the fields sent change; ``null`` clears an optional one (``name`` and the flags
    cannot be null)."""

    name: Name | None = None
    priority: Annotated[Priority | None, Clearable] = None
    tag: Annotated[Tag | None, Clearable] = None
    calendar_id: Annotated[uuid.UUID | None, Clearable] = None
    response_minutes: Annotated[Minutes | None, Clearable] = None
    resolution_minutes: Annotated[Minutes | None, Clearable] = None
    warning_share: Annotated[Share | None, Clearable] = None
    escalate_to_user_id: Annotated[uuid.UUID | None, Clearable] = None
    escalate_to_role: Annotated[
        Annotated[str, Field(min_length=1, max_length=64)] | None, Clearable
    ] = None
    escalate_raise_priority: bool | None = None
    active: bool | None = None


class SlaPolicyPublic(ResponseModel):
    id: uuid.UUID
    name: str
    priority: str | None
    tag: str | None
    calendar_id: uuid.UUID | None
    response_minutes: int | None
    resolution_minutes: int | None
    warning_share: float | None
    escalate_to_user_id: uuid.UUID | None
    escalate_to_role: str | None
    escalate_raise_priority: bool
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


# How deep a condition's value may nest lists and objects: far more than any event's data
# needs, and far from the recursion limit that the core's checks of a body walk into (a
# value nested 600 deep was a RecursionError, a 500).
MAX_VALUE_DEPTH = 16


def _shallow(value: Any) -> Any:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, list | dict):
            if depth > MAX_VALUE_DEPTH:
                raise ValueError(f"nests lists and objects more than {MAX_VALUE_DEPTH} deep")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return value


class ConditionIn(RequestModel):
    field: Annotated[str, Field(max_length=100, description="a path: data.status, subject, …")]
    op: Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists"] = "eq"
    value: Annotated[Any, BeforeValidator(_shallow)] = None


class LinkTemplate(RequestModel):
    kind: Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    id: Annotated[str, Field(min_length=1, max_length=200, description='e.g. "{subject}"')]


class CreateTaskAction(RequestModel):
    title: Annotated[str, Field(min_length=1, max_length=300, description='"Call {data.name}"')]
    description: Annotated[str, Field(max_length=5000)] = ""
    assignee: Annotated[str, Field(max_length=200)] | None = Field(
        None, description='a user id or a template such as "{data.owner_id}"; null: unassigned'
    )
    due_in: Annotated[str, Field(max_length=50)] | None = Field(
        None, description='"1 business day", "4 business hours", "2 days"'
    )
    priority: Priority = "normal"
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    link: LinkTemplate | None = None


class AutomationRuleCreate(RequestModel):
    name: Name
    on: EventType
    when: Annotated[list[ConditionIn], Field(max_length=20)] = []
    create_task: CreateTaskAction
    enabled: bool = True


class AutomationRuleUpdate(UpdateModel):
    name: Name | None = None
    on: EventType | None = None
    when: Annotated[list[ConditionIn], Field(max_length=20)] | None = None
    create_task: CreateTaskAction | None = None
    enabled: bool | None = None


class AutomationRulePublic(ResponseModel):
    id: uuid.UUID
    name: str
    on: str
    when: list[dict[str, Any]]
    create_task: dict[str, Any]
    enabled: bool
    active: bool = Field(description="enabled, and an enabled plugin declares the event type")
    builtin_key: str | None
    created_at: datetime
    updated_at: datetime
    version: int
