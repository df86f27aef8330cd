"""`/api/v1/deals/activities` routes and the client timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import AwareDatetime

from crm2_core.api import IfMatchDep, Page, PageDep, SessionDep, etag_for, require
from crm2_deals.models import Activity
from crm2_deals.schemas.activities import (
    ActivityCreate,
    ActivityFilters,
    ActivityKind,
    ActivityPublic,
    ActivityUpdate,
)
from crm2_deals.service import activities as service
from crm2_hookspecs import Principal

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

DealsRead = Annotated[Principal, Depends(require("deals:read"))]
DealsWrite = Annotated[Principal, Depends(require("deals:write"))]
DealsDelete = Annotated[Principal, Depends(require("deals:delete"))]
KindsQuery = Annotated[list[ActivityKind] | None, Query(description="repeatable")]


async def activity_filters(
    client: Annotated[uuid.UUID | None, Query(description="client id")] = None,
    deal: Annotated[uuid.UUID | None, Query(description="deal id")] = None,
    policy: Annotated[uuid.UUID | None, Query(description="policy id")] = None,
    owner: Annotated[uuid.UUID | None, Query(description="owner's user id")] = None,
    kind: KindsQuery = None,
    updated_since: Annotated[AwareDatetime | None, Query(description="changed at or after")] = None,
) -> ActivityFilters:
    return ActivityFilters(
        client=client,
        deal=deal,
        policy=policy,
        owner=owner,
        kind=tuple(kind or ()),
        updated_since=updated_since,
    )


FiltersDep = Annotated[ActivityFilters, Depends(activity_filters)]


def _shaped(row: Activity, response: Response) -> ActivityPublic:
    public = ActivityPublic.model_validate(row)
    response.headers["ETag"] = etag_for(public.version)
    return public


@router.get("/activities", response_model=Page[ActivityPublic])
async def list_activities(
    principal: DealsRead, session: SessionDep, page: PageDep, filters: FiltersDep
) -> Page[ActivityPublic]:
    """Activities the caller may see, newest first, cursor-paginated."""
    rows, cursor = await service.list_activities(session, principal, filters, page)
    return Page(items=[ActivityPublic.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/activities", response_model=ActivityPublic, status_code=status.HTTP_201_CREATED)
async def create_activity(
    body: ActivityCreate, principal: DealsWrite, session: SessionDep, response: Response
) -> ActivityPublic:
    """Log a note, call, meeting or e-mail on a client (and one of its deals or policies)."""
    row = await service.create_activity(session, principal, body)
    response.headers["Location"] = f"/api/v1/deals/activities/{row.id}"
    return _shaped(row, response)


@router.get("/activities/{activity_id}", response_model=ActivityPublic)
async def get_activity(
    activity_id: uuid.UUID, principal: DealsRead, session: SessionDep, response: Response
) -> ActivityPublic:
    """One activity; the ETag header is what a later PATCH sends as If-Match."""
    return _shaped(await service.get_activity(session, principal, activity_id), response)


@router.patch("/activities/{activity_id}", response_model=ActivityPublic)
async def update_activity(
    activity_id: uuid.UUID,
    body: ActivityUpdate,
    if_match: IfMatchDep,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
) -> ActivityPublic:
    """Change an activity (If-Match required); system entries are read-only (409)."""
    row = await service.update_activity(session, principal, activity_id, if_match, body)
    return _shaped(row, response)


@router.delete("/activities/{activity_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_activity(
    activity_id: uuid.UUID,
    principal: DealsDelete,
    session: SessionDep,
    if_match: Annotated[str | None, Header(description="checked when sent")] = None,
) -> Response:
    """Delete an activity; system entries stay (409)."""
    await service.delete_activity(session, principal, activity_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/clients/{client_id}/timeline", response_model=Page[ActivityPublic])
async def client_timeline(
    client_id: uuid.UUID,
    principal: DealsRead,
    session: SessionDep,
    page: PageDep,
    kind: KindsQuery = None,
) -> Page[ActivityPublic]:
    """The client's activities and its deals' and policies', newest first; 404 if not visible."""
    rows, cursor = await service.client_timeline(
        session, principal, client_id, tuple(kind or ()), page
    )
    return Page(items=[ActivityPublic.model_validate(r) for r in rows], next_cursor=cursor)
