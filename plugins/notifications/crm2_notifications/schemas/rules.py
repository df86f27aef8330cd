"""Rules and webhook subscriptions (admin)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from crm2_core.api import RequestModel, ResponseModel, UpdateModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
EventType = Annotated[
    str, Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
]
EventPattern = Annotated[
    str, Field(max_length=100, pattern=r"^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_.]*[a-z0-9_*]))$")
]
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Role = Annotated[str, Field(min_length=1, max_length=64)]
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){0,4}$", max_length=100)]


class ConditionIn(RequestModel):
    field: Annotated[str, Field(max_length=100, description="a path: data.status, subject, …")]
    op: Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists"] = "eq"
    value: Any = None


class TemplateIn(RequestModel):
    title: Annotated[
        str, Field(min_length=1, max_length=1000, description='"Deal {{ data.title }} won"')
    ]
    body: Annotated[str, Field(max_length=5000)] = ""
    link: Annotated[str, Field(max_length=1000)] = ""


class RecordIn(RequestModel):
    kind: Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    id: Annotated[str, Field(max_length=200)] = "{{ subject }}"


class RecipientsIn(RequestModel):
    record: RecordIn | None = Field(None, description="resolved through crm2_resolve_entity")
    record_fields: Annotated[list[FieldName], Field(max_length=5)] = ["owner_id", "assignee_id"]
    data_fields: Annotated[list[FieldName], Field(max_length=10)] = []
    roles: Annotated[list[Role], Field(max_length=10)] = []
    users: Annotated[list[uuid.UUID], Field(max_length=200)] = []


class NotificationRuleCreate(RequestModel):
    name: Name
    event_type: EventType
    conditions: Annotated[list[ConditionIn], Field(max_length=20)] = []
    template: TemplateIn
    recipients: RecipientsIn
    channels: Annotated[list[ChannelName], Field(min_length=1, max_length=10)] = ["inapp"]
    enabled: bool = True


class NotificationRuleUpdate(UpdateModel):
    name: Name | None = None
    event_type: EventType | None = None
    conditions: Annotated[list[ConditionIn], Field(max_length=20)] | None = None
    template: TemplateIn | None = None
    recipients: RecipientsIn | None = None
    channels: Annotated[list[ChannelName], Field(min_length=1, max_length=10)] | None = None
    enabled: bool | None = None


class NotificationRulePublic(ResponseModel):
    id: uuid.UUID
    name: str
    event_type: str
    conditions: list[dict[str, Any]]
    template: dict[str, Any]
    recipients: dict[str, Any]
    channels: list[str]
    enabled: bool
    active: bool = Field(description="enabled, its plugin enabled, and the event type declared")
    problems: list[str] = Field(
        default_factory=list,
        description="why the rule can never fire as stored (a condition saved before such "
        "values were refused, e.g. gt with an object); empty when none: change its conditions",
    )
    builtin_key: str | None
    plugin: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookCreate(RequestModel):
    name: Name
    url: Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")]
    event_types: Annotated[list[EventPattern], Field(min_length=1, max_length=50)]
    active: bool = True


class WebhookUpdate(UpdateModel):
    name: Name | None = None
    url: Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")] | None = None
    event_types: Annotated[list[EventPattern], Field(min_length=1, max_length=50)] | None = None
    active: bool | None = None
    rotate_secret: bool = Field(
        False, description="add a new signing secret; the previous one keeps signing too"
    )
    drop_old_secrets: bool = Field(False, description="keep only the newest secret")


class WebhookPublic(ResponseModel):
    id: uuid.UUID
    name: str
    url: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None = Field(
        None, description="why it switched itself off (the receiver answered 410 Gone)"
    )
    secrets: list[str] = Field(description="newest first; each one signs every delivery")
    created_at: datetime
    updated_at: datetime
    version: int
