"""Request and response bodies for pipelines, stages, lost reasons and the pipeline summary."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from crm2_core.api import Amount, Int32, RequestModel, ResponseModel, UpdateModel
from crm2_deals.models import LostReason, Pipeline, Stage

StageKind = Literal["open", "won", "lost"]


class StageIn(RequestModel):
    """A stage; on PATCH an ``id`` keeps (and changes) an existing stage, no ``id`` adds one."""

    id: uuid.UUID | None = None
    name: str = Field(min_length=1, max_length=200)
    probability: int = Field(ge=0, le=100)
    kind: StageKind = "open"
    position: Int32 | None = Field(default=None, ge=0, description="default: its place in the list")


def _ordered(stages: list[StageIn]) -> list[StageIn]:
    """Positions filled in from the list order, checked unique, as are names (in any
    case); at least one open stage."""
    filled = [
        s if s.position is not None else s.model_copy(update={"position": i})
        for i, s in enumerate(stages)
    ]
    positions = [s.position for s in filled]
    if len(set(positions)) != len(positions):
        raise ValueError("stage positions must be unique")
    ids = [s.id for s in filled if s.id is not None]
    if len(set(ids)) != len(ids):
        raise ValueError("a stage id appears twice")
    # a board's columns and a deal's stage (history, export, timeline) go by name:
    # two stages of one name could not be told apart
    seen: set[str] = set()
    for stage in filled:
        key = stage.name.strip().casefold()
        if key in seen:
            raise ValueError(f"stage names must be unique in a pipeline: {stage.name!r} is twice")
        seen.add(key)
    if not any(s.kind == "open" for s in filled):
        raise ValueError("a pipeline needs at least one open stage")
    return sorted(filled, key=lambda s: s.position or 0)


class PipelineCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    is_default: bool = False
    stages: list[StageIn] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _stages(self) -> PipelineCreate:
        if any(s.id is not None for s in self.stages):
            raise ValueError("new stages take no id")
        self.stages = _ordered(self.stages)
        return self


class PipelineUpdate(UpdateModel):
    """``stages``, when sent, is the whole new list: stages left out are removed."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_default: bool | None = None
    stages: list[StageIn] | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _stages(self) -> PipelineUpdate:
        if self.stages is not None:
            self.stages = _ordered(self.stages)
        return self


class StagePublic(ResponseModel, fields_of=Stage, exclude=("pipeline_id",)):
    """A stage of a pipeline."""


class PipelinePublic(ResponseModel, fields_of=Pipeline):
    stages: list[StagePublic]


class LostReasonCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)


class LostReasonPublic(ResponseModel, fields_of=LostReason):
    """A reason a deal was lost; inactive ones are kept for old deals."""


class CurrencyTotal(BaseModel):
    """Money of one currency: the total and the probability-weighted forecast."""

    currency: str
    value: Amount
    forecast: Amount


class OwnerSummary(BaseModel):
    owner_id: uuid.UUID
    count: int
    totals: list[CurrencyTotal]


class StageSummary(BaseModel):
    stage_id: uuid.UUID
    name: str
    kind: str
    probability: int
    position: int
    count: int
    totals: list[CurrencyTotal]
    owners: list[OwnerSummary] | None = Field(None, description="with ?by_owner=true")


class PipelineSummary(BaseModel):
    pipeline_id: uuid.UUID
    name: str
    count: int
    totals: list[CurrencyTotal] = Field(description="over every stage, per currency")
    stages: list[StageSummary]
