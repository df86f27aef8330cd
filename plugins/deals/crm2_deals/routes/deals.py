"""`/api/v1/deals/deals` routes: CRUD, stage moves, history and the CSV export."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from crm2_core.api import (
    ContextDep,
    IfMatchDep,
    Page,
    PageDep,
    SessionDep,
    check_currency,
    etag_for,
    require,
)
from crm2_deals.models import Deal
from crm2_deals.repository import deals as repo
from crm2_deals.routes.clients import as_utc
from crm2_deals.schemas.deals import DealCreate, DealMove, DealPublic, DealUpdate, StageMovePublic
from crm2_deals.service import deals as service
from crm2_deals.visibility import Visibility
from crm2_hookspecs import Principal

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

DealsRead = Annotated[Principal, Depends(require("deals:read"))]
DealsWrite = Annotated[Principal, Depends(require("deals:write"))]
DealsDelete = Annotated[Principal, Depends(require("deals:delete"))]
DealsExport = Annotated[Principal, Depends(require("deals:export"))]
DealSort = Annotated[
    str,
    Query(
        pattern=r"^-?(title|value|created_at|updated_at)$",
        description="a column, '-' for descending",
    ),
]
Money = Annotated[
    str | None,
    Query(pattern=r"^\d{1,15}(\.\d{1,6})?$", description="a decimal string; needs currency"),
]


async def deal_filters(
    owner: Annotated[uuid.UUID | None, Query(description="owner's user id")] = None,
    stage: uuid.UUID | None = None,
    status: Literal["open", "won", "lost"] | None = None,
    pipeline: uuid.UUID | None = None,
    client: uuid.UUID | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    value_min: Money = None,
    value_max: Money = None,
    expected_close_from: date | None = None,
    expected_close_to: date | None = None,
    updated_since: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="in the title")] = None,
) -> repo.DealFilters:
    code = check_currency(currency) if currency else None
    low, high = service.value_bounds(
        code,
        Decimal(value_min) if value_min else None,
        Decimal(value_max) if value_max else None,
    )
    return repo.DealFilters(
        owner=owner,
        stage=stage,
        status=status,
        pipeline=pipeline,
        client=client,
        currency=code,
        value_min_minor=low,
        value_max_minor=high,
        expected_close_from=expected_close_from,
        expected_close_to=expected_close_to,
        updated_since=as_utc(updated_since),
        q=q,
    )


DealFiltersDep = Annotated[repo.DealFilters, Depends(deal_filters)]


def _public(deal: Deal, response: Response) -> DealPublic:
    response.headers["ETag"] = etag_for(deal.version)
    return service.public(deal)


@router.get("/deals", response_model=Page[DealPublic])
async def list_deals(
    principal: DealsRead,
    session: SessionDep,
    page: PageDep,
    filters: DealFiltersDep,
    sort: DealSort = "-updated_at",
) -> Page[DealPublic]:
    """Deals the caller may see, filtered and sorted, cursor-paginated."""
    visibility = Visibility.of(principal)
    rows, cursor = await repo.list_deals(session, visibility, filters, sort, page)
    return Page(items=[service.public(d) for d in rows], next_cursor=cursor)


@router.post("/deals", response_model=DealPublic, status_code=status.HTTP_201_CREATED)
async def create_deal(
    body: DealCreate,
    principal: DealsWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> DealPublic:
    """Create a deal (default pipeline and its first open stage unless given)."""
    currency: str = context.plugin_settings("deals").default_currency
    deal = await service.create_deal(session, principal, body, currency)
    response.headers["Location"] = f"/api/v1/deals/deals/{deal.id}"
    return _public(deal, response)


@router.get("/deals/export", response_class=StreamingResponse)
async def export_deals(
    principal: DealsExport,
    context: ContextDep,
    filters: DealFiltersDep,
    sort: DealSort = "-updated_at",
) -> StreamingResponse:
    """The deal list as CSV (same filters as the list), streamed."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    chunks = service.export_deals(context.session_factory, Visibility.of(principal), filters, sort)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="deals-{stamp}.csv"'},
    )


@router.get("/deals/{deal_id}", response_model=DealPublic)
async def get_deal(
    deal_id: uuid.UUID, principal: DealsRead, session: SessionDep, response: Response
) -> DealPublic:
    """One deal; its ETag is what a PATCH sends as If-Match."""
    deal = await service.get_deal(session, Visibility.of(principal), deal_id)
    return _public(deal, response)


@router.patch("/deals/{deal_id}", response_model=DealPublic)
async def update_deal(
    deal_id: uuid.UUID,
    body: DealUpdate,
    if_match: IfMatchDep,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
) -> DealPublic:
    """Change a deal's fields (If-Match required); stages change through /move."""
    deal = await service.update_deal(session, principal, deal_id, if_match, body)
    return _public(deal, response)


@router.delete("/deals/{deal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_deal(deal_id: uuid.UUID, principal: DealsDelete, session: SessionDep) -> Response:
    """Delete a deal with its history and activities (its policies stay, unlinked)."""
    await service.delete_deal(session, principal, deal_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/deals/{deal_id}/move", response_model=DealPublic)
async def move_deal(
    deal_id: uuid.UUID,
    body: DealMove,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(description="optional; when sent, a stale ETag is 412")
    ] = None,
) -> DealPublic:
    """Move a deal to another stage of its pipeline; a lost stage needs a reason."""
    deal = await service.move_deal(session, principal, deal_id, if_match, body)
    return _public(deal, response)


@router.get("/deals/{deal_id}/history", response_model=Page[StageMovePublic])
async def deal_history(
    deal_id: uuid.UUID, principal: DealsRead, session: SessionDep, page: PageDep
) -> Page[StageMovePublic]:
    """Every stage the deal entered (from, to, by, at, seconds in the previous), oldest first."""
    deal = await service.get_deal(session, Visibility.of(principal), deal_id)
    rows, cursor = await repo.history(session, deal.id, page)
    return Page(items=[StageMovePublic.model_validate(m) for m in rows], next_cursor=cursor)
