"""Request and response bodies for deals, stage moves and the stage history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field

from crm2_core.api import Amount, Clearable, Currency, RequestModel, ResponseModel, UpdateModel
from crm2_deals.models import Deal, StageMove


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


class DealUpdate(
    UpdateModel,
    partial_of=DealCreate,
    exclude=("pipeline_id", "stage_id"),
    clearable=("expected_close_date", "lost_reason_id", "lost_reason"),
):
    """Only the fields sent change; the stage changes through ``POST …/move``."""

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


class DealPublic(ResponseModel, fields_of=Deal, exclude=("value_minor",)):
    value: Amount


class StageMovePublic(ResponseModel, fields_of=StageMove):
    """One stage a deal entered."""


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
