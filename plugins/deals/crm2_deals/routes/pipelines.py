"""`/api/v1/deals/pipelines` and `/api/v1/deals/lost-reasons` routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    APIRouter,
    IfMatchDep,
    OptionalIfMatch,
    Page,
    PageDep,
    SessionDep,
    created,
    page_response,
    present,
)
from crm2_deals.models import Pipeline
from crm2_deals.repository import pipelines as repo
from crm2_deals.routes.deps import DealsAdmin, DealsRead
from crm2_deals.schemas.pipelines import (
    LostReasonCreate,
    LostReasonPublic,
    PipelineCreate,
    PipelinePublic,
    PipelineSummary,
    PipelineUpdate,
)
from crm2_deals.service import pipelines as service

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])


async def _one(session: AsyncSession, pipeline: Pipeline, response: Response) -> PipelinePublic:
    (public,) = await service.publics(session, [pipeline])
    return present(response, public)


@router.get("/pipelines", response_model=Page[PipelinePublic])
async def list_pipelines(_: DealsRead, session: SessionDep, page: PageDep) -> Response:
    """Pipelines (the default first) with their stages ordered by position."""
    rows, cursor = await repo.list_pipelines(session, page)
    return page_response(PipelinePublic, await service.publics(session, rows), cursor)


@router.post("/pipelines", response_model=PipelinePublic, status_code=status.HTTP_201_CREATED)
async def create_pipeline(
    body: PipelineCreate, _: DealsAdmin, session: SessionDep, response: Response
) -> PipelinePublic:
    """Create a pipeline with its stages (positions default to the list order)."""
    pipeline = await service.create_pipeline(session, body)
    (public,) = await service.publics(session, [pipeline])
    return created(response, f"/api/v1/deals/pipelines/{pipeline.id}", public)


@router.get("/pipelines/{pipeline_id}", response_model=PipelinePublic)
async def get_pipeline(
    pipeline_id: uuid.UUID, _: DealsRead, session: SessionDep, response: Response
) -> PipelinePublic:
    """One pipeline with its stages."""
    pipeline = await service.get_pipeline(session, pipeline_id)
    return await _one(session, pipeline, response)


@router.patch("/pipelines/{pipeline_id}", response_model=PipelinePublic)
async def update_pipeline(
    pipeline_id: uuid.UUID,
    body: PipelineUpdate,
    if_match: IfMatchDep,
    _: DealsAdmin,
    session: SessionDep,
    response: Response,
) -> PipelinePublic:
    """Rename, make default, or replace the stage list (If-Match required)."""
    pipeline = await service.update_pipeline(session, pipeline_id, if_match, body)
    return await _one(session, pipeline, response)


@router.delete("/pipelines/{pipeline_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pipeline(
    pipeline_id: uuid.UUID, _: DealsAdmin, session: SessionDep, if_match: OptionalIfMatch = None
) -> Response:
    """Delete a pipeline that holds no deals and is not the default; If-Match optional."""
    await service.delete_pipeline(session, pipeline_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/pipelines/{pipeline_id}/summary", response_model=PipelineSummary)
async def pipeline_summary(
    pipeline_id: uuid.UUID,
    principal: DealsRead,
    session: SessionDep,
    by_owner: Annotated[bool, Query(description="add a per-owner breakdown")] = False,
) -> PipelineSummary:
    """Per stage: deal count, total value and weighted forecast per currency (visible deals)."""
    return await service.summary(session, principal, pipeline_id, by_owner)


@router.get("/lost-reasons", response_model=Page[LostReasonPublic])
async def list_lost_reasons(
    _: DealsRead,
    session: SessionDep,
    include_inactive: Annotated[bool, Query(description="also the retired ones")] = False,
) -> Response:
    """The managed list of reasons a deal is lost, by name (one page)."""
    rows = await repo.list_lost_reasons(session, include_inactive)
    return page_response(LostReasonPublic, rows, None)


@router.post("/lost-reasons", response_model=LostReasonPublic, status_code=status.HTTP_201_CREATED)
async def create_lost_reason(
    body: LostReasonCreate, _: DealsAdmin, session: SessionDep
) -> LostReasonPublic:
    """Add a lost reason to the managed list."""
    return LostReasonPublic.model_validate(await service.create_lost_reason(session, body))
