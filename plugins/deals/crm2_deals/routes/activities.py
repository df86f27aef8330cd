"""`/api/v1/deals/activities` routes and the client timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from crm2_core.api import AwareIsoDateTime, Page, PageDep, SessionDep, created, record_routes
from crm2_deals.routes.deps import PERMISSIONS, DealsRead, DealsWrite
from crm2_deals.schemas.activities import (
    ActivityCreate,
    ActivityFilters,
    ActivityKind,
    ActivityPublic,
    ActivityUpdate,
)
from crm2_deals.service import activities as service

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

KindsQuery = Annotated[list[ActivityKind] | None, Query(description="repeatable")]


async def activity_filters(
    client: Annotated[uuid.UUID | None, Query(description="client id")] = None,
    deal: Annotated[uuid.UUID | None, Query(description="deal id")] = None,
    policy: Annotated[uuid.UUID | None, Query(description="policy id")] = None,
    owner: Annotated[uuid.UUID | None, Query(description="owner's user id")] = None,
    kind: KindsQuery = None,
    updated_since: Annotated[
        AwareIsoDateTime | None, Query(description="changed at or after")
    ] = None,
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
    location = f"/api/v1/deals/activities/{row.id}"
    return created(response, location, ActivityPublic.model_validate(row))


record_routes(
    router, "/activities/{activity_id}", ActivityPublic.model_validate,
    response_model=ActivityPublic, permissions=PERMISSIONS, get=service.get_activity,
    update=(ActivityUpdate, service.update_activity), delete=service.delete_activity,
    docs=("One activity; the ETag header is what a later PATCH sends as If-Match.",
          "Change an activity (If-Match required); system entries are read-only (409).",
          "Delete an activity; system entries stay (409)."),
)  # fmt: skip


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
