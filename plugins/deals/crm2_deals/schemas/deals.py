"""Request and response bodies for deals, stage moves and the stage history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field

from crm2_core.api import Amount, Clearable, Currency, RequestModel, ResponseModel, UpdateModel


class DealCreate(RequestModel):
    title: str = Field(min_length=1, max_length=300)
    client_id: uuid.UUID
    pipeline_id: uuid.UUID | None = Field(None, description="default: the stage's, or the default")
    stage_id: uuid.UUID | None = Field(None, description="default: the pipeline's first open stage")
    value: Amount | None = Field(None, description='a decimal string such as "1234.50"; default 0')
    currency: Currency | None = Field(
        None, description="ISO 4217; default CRM2_DEALS_DEFAULT_CURRENCY"
    )
    owner_id: uuid.UUID | None = Field(None, description="default: the caller")
    source: str = Field("", max_length=200)
    expected_close_date: date | None = None
    lost_reason_id: uuid.UUID | None = Field(None, description="when created in a lost stage")
    lost_reason: str | None = Field(None, max_length=1000)


class DealUpdate(UpdateModel):
    """Only the fields sent change; the stage changes through ``POST …/move``."""

    title: str | None = Field(None, min_length=1, max_length=300)
    client_id: uuid.UUID | None = None
    value: Amount | None = None
    currency: Currency | None = None
    owner_id: uuid.UUID | None = None
    source: str | None = Field(None, max_length=200)
    expected_close_date: Annotated[date | None, Clearable] = None
    lost_reason_id: Annotated[uuid.UUID | None, Clearable] = Field(
        None, description="only on a lost deal"
    )
    lost_reason: Annotated[str | None, Clearable] = Field(
        None, max_length=1000, description="only on a lost deal"
    )


class DealMove(RequestModel):
    """Move to another stage of the deal's pipeline; a lost stage needs a reason."""

    stage_id: uuid.UUID
    lost_reason_id: uuid.UUID | None = Field(None, description="one of GET …/lost-reasons")
    lost_reason: str | None = Field(None, max_length=1000, description="free text")


class DealPublic(ResponseModel):
    id: uuid.UUID
    title: str
    client_id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: str
    value: Amount
    currency: str
    owner_id: uuid.UUID
    source: str
    expected_close_date: date | None
    lost_reason_id: uuid.UUID | None
    lost_reason: str | None
    closed_at: datetime | None
    stage_entered_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


class StageMovePublic(ResponseModel):
    id: uuid.UUID
    deal_id: uuid.UUID
    from_stage_id: uuid.UUID | None
    to_stage_id: uuid.UUID
    moved_by: uuid.UUID | None
    moved_at: datetime
    seconds_in_previous: int | None


class TimelineEntry(ResponseModel):
    at: datetime
    title: str
    kind: str = ""
    source: str = Field(description="the plugin that contributed the entry")
    link: dict[str, str] | None = Field(None, description='{"kind": "tasks.task", "id": "…"}')


class TimelinePublic(ResponseModel):
    """At most 200 entries, newest first (not paginated: it merges several sources)."""

    items: list[TimelineEntry]


class DealExtraPublic(ResponseModel):
    fields: dict[str, dict[str, Any]] = Field(
        description="per plugin, the fields it shows with the deal (crm2_deals_extra_fields)"
    )
