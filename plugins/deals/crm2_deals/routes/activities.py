"""`/api/v1/deals/activities` routes and the client timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from crm2_core.api import (
    APIRouter,
    Page,
    PageDep,
    SessionDep,
    create_route,
    list_query,
    list_route,
    page_response,
    record_routes,
)
from crm2_deals.routes.deps import PERMISSIONS, DealsRead
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


activity_query = list_query(ActivityFilters)


list_route(
    router, "/activities", ActivityPublic.model_validate, response_model=ActivityPublic,
    permission="deals:read", fetch=service.list_activities, query=activity_query,
    name="list_activities", doc="Activities the caller may see, newest first, cursor-paginated.",
)  # fmt: skip
create_route(
    router, "/activities", ActivityPublic.model_validate, response_model=ActivityPublic,
    permission="deals:write", body=ActivityCreate, create=service.create_activity,
    location="/activities/{id}", name="create_activity",
    doc="Log a note, call, meeting or e-mail on a client (and one of its deals or policies).",
)  # fmt: skip


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
) -> Response:
    """The client's activities and its deals' and policies', newest first; 404 if not visible."""
    rows, cursor = await service.client_timeline(
        session, principal, client_id, tuple(kind or ()), page
    )
    return page_response(ActivityPublic, rows, cursor)
