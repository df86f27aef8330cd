"""`/api/v1/deals/deals` routes: CRUD, stage moves, history and the CSV export."""

from __future__ import annotations

import uuid
from functools import partial

from fastapi import Response

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    OptionalIfMatch,
    Page,
    PageDep,
    SessionDep,
    create_route,
    export_route,
    list_query,
    list_route,
    page_response,
    present,
    query_filters,
    record_routes,
)
from crm2_deals.repository import deals as repo
from crm2_deals.routes.deps import (
    PERMISSIONS,
    DealsRead,
    DealsWrite,
)
from crm2_deals.schemas.deals import (
    DealCreate,
    DealExtraPublic,
    DealMove,
    DealPublic,
    DealUpdate,
    StageMovePublic,
    TimelineEntry,
    TimelinePublic,
)
from crm2_deals.service import deals as service

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

deal_filters = query_filters(repo.DealFilters, finish=service.with_value_bounds)  # the export's
deal_query = list_query(repo.DealFilters, repo.DEAL_SORTS, finish=service.with_value_bounds)


list_route(
    router, "/deals", service.public_values, response_model=DealPublic, permission="deals:read",
    fetch=service.list_deals, query=deal_query, name="list_deals",
    doc="Deals the caller may see, filtered and sorted, cursor-paginated.",
)  # fmt: skip
create_route(
    router, "/deals", service.public, response_model=DealPublic, permission="deals:write",
    body=DealCreate, create=partial(service.create_deal, whole_transaction=True),
    location="/deals/{id}", name="create_deal",
    params={"context": ContextDep},
    doc="Create a deal (default pipeline and its first open stage unless given).",
)  # fmt: skip


export_route(
    router, "/deals/export", permission="deals:export", filters=deal_filters,
    sorts=repo.DEAL_SORTS, export=service.export_deals, columns=service.DEAL_EXPORT,
    filename="deals", doc="The deal list as CSV (same filters as the list), streamed.",
)  # fmt: skip


record_routes(
    router, "/deals/{deal_id}", service.public, response_model=DealPublic,
    permissions=PERMISSIONS, get=service.get_deal, delete=service.delete_deal,
    docs=("One deal; its ETag is what a PATCH sends as If-Match.", "",
          "Delete a deal, its history and activities (its policies stay, unlinked, with theirs)."),
)  # fmt: skip


@router.patch("/deals/{deal_id}", response_model=DealPublic)
async def update_deal(
    deal_id: uuid.UUID,
    body: DealUpdate,
    if_match: IfMatchDep,
    principal: DealsWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> DealPublic:
    """Change a deal's fields (If-Match required); stages change through /move."""
    deal = await service.update_deal(session, principal, deal_id, if_match, body, context=context)
    return present(response, service.public(deal))


@router.get("/deals/{deal_id}/timeline", response_model=TimelinePublic)
async def deal_timeline(
    deal_id: uuid.UUID, principal: DealsRead, session: SessionDep, context: ContextDep
) -> TimelinePublic:
    """The deal's stage moves and what other plugins add (crm2_deals_timeline), newest first."""
    entries = await service.timeline(session, principal, deal_id, context)
    return TimelinePublic(items=[TimelineEntry.model_validate(e) for e in entries])


@router.get("/deals/{deal_id}/extra", response_model=DealExtraPublic)
async def deal_extra(
    deal_id: uuid.UUID, principal: DealsRead, session: SessionDep, context: ContextDep
) -> DealExtraPublic:
    """Fields other plugins show with this deal (crm2_deals_extra_fields), by plugin."""
    return DealExtraPublic(fields=await service.extra(session, principal, deal_id, context))


@router.post("/deals/{deal_id}/move", response_model=DealPublic)
async def move_deal(
    deal_id: uuid.UUID,
    body: DealMove,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    context: ContextDep,
    if_match: OptionalIfMatch = None,
) -> DealPublic:
    """Move a deal to another stage of its pipeline; a lost stage needs a reason."""
    deal = await service.move_deal(session, principal, deal_id, if_match, body, context=context)
    return present(response, service.public(deal))


@router.get("/deals/{deal_id}/history", response_model=Page[StageMovePublic])
async def deal_history(
    deal_id: uuid.UUID, principal: DealsRead, session: SessionDep, page: PageDep
) -> Response:
    """Every stage the deal entered (from, to, by, at, seconds in the previous), oldest first."""
    rows, cursor = await service.history(session, principal, deal_id, page)
    return page_response(StageMovePublic, rows, cursor)
