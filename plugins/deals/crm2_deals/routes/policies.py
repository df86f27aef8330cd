"""`/api/v1/deals/policies` routes."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import AwareDatetime

from crm2_core.api import IfMatchDep, Page, PageDep, SessionDep, etag_for, require
from crm2_deals.models import Policy
from crm2_deals.schemas.policies import (
    PolicyCancel,
    PolicyCreate,
    PolicyFilters,
    PolicyPublic,
    PolicyRenew,
    PolicyStatus,
    PolicyUpdate,
)
from crm2_deals.service import policies as service
from crm2_hookspecs import Principal

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

DealsRead = Annotated[Principal, Depends(require("deals:read"))]
DealsWrite = Annotated[Principal, Depends(require("deals:write"))]
DealsDelete = Annotated[Principal, Depends(require("deals:delete"))]
OptionalIfMatch = Annotated[
    str | None, Header(description="the ETag of your last read; checked when sent")
]
PolicySort = Literal[
    "updated_at", "-updated_at", "created_at", "-created_at", "start_date", "-start_date",
    "end_date", "-end_date", "number", "-number",
]  # fmt: skip


async def policy_filters(
    owner: Annotated[uuid.UUID | None, Query(description="owner's user id")] = None,
    client: Annotated[uuid.UUID | None, Query(description="client id")] = None,
    deal: Annotated[uuid.UUID | None, Query(description="deal id")] = None,
    status: Annotated[list[PolicyStatus] | None, Query(description="repeatable")] = None,
    insurer: Annotated[str | None, Query(max_length=200, description="exact insurer")] = None,
    end_before: Annotated[date | None, Query(description="end_date on or before")] = None,
    end_after: Annotated[date | None, Query(description="end_date on or after")] = None,
    updated_since: Annotated[AwareDatetime | None, Query(description="changed at or after")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="number, insurer")
    ] = None,
    sort: Annotated[PolicySort, Query(description="a field, '-' for descending")] = "-updated_at",
) -> PolicyFilters:
    return PolicyFilters(
        owner=owner,
        client=client,
        deal=deal,
        status=tuple(status or ()),
        insurer=insurer,
        end_before=end_before,
        end_after=end_after,
        updated_since=updated_since,
        q=q,
        sort=sort,
    )


FiltersDep = Annotated[PolicyFilters, Depends(policy_filters)]


def _shaped(row: Policy, response: Response) -> PolicyPublic:
    public = PolicyPublic.of(row)
    response.headers["ETag"] = etag_for(public.version)
    return public


@router.get("/policies", response_model=Page[PolicyPublic])
async def list_policies(
    principal: DealsRead, session: SessionDep, page: PageDep, filters: FiltersDep
) -> Page[PolicyPublic]:
    """Policies the caller may see, filtered and sorted, cursor-paginated."""
    rows, cursor = await service.list_policies(session, principal, filters, page)
    return Page(items=[PolicyPublic.of(r) for r in rows], next_cursor=cursor)


@router.post("/policies", response_model=PolicyPublic, status_code=status.HTTP_201_CREATED)
async def create_policy(
    body: PolicyCreate, principal: DealsWrite, session: SessionDep, response: Response
) -> PolicyPublic:
    """Record a policy (a draft unless ``status`` is ``active``); 409 when the number is taken."""
    row = await service.create_policy(session, principal, body)
    response.headers["Location"] = f"/api/v1/deals/policies/{row.id}"
    return _shaped(row, response)


@router.get("/policies/{policy_id}", response_model=PolicyPublic)
async def get_policy(
    policy_id: uuid.UUID, principal: DealsRead, session: SessionDep, response: Response
) -> PolicyPublic:
    """One policy; the ETag header is what a later PATCH sends as If-Match."""
    return _shaped(await service.get_policy(session, principal, policy_id), response)


@router.patch("/policies/{policy_id}", response_model=PolicyPublic)
async def update_policy(
    policy_id: uuid.UUID,
    body: PolicyUpdate,
    if_match: IfMatchDep,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
) -> PolicyPublic:
    """Change a policy's fields (If-Match required); the status has its own actions."""
    row = await service.update_policy(session, principal, policy_id, if_match, body)
    return _shaped(row, response)


@router.delete("/policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(
    policy_id: uuid.UUID,
    principal: DealsDelete,
    session: SessionDep,
    if_match: OptionalIfMatch = None,
) -> Response:
    """Delete a policy and its activities."""
    await service.delete_policy(session, principal, policy_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/policies/{policy_id}/activate", response_model=PolicyPublic)
async def activate_policy(
    policy_id: uuid.UUID,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> PolicyPublic:
    """Issue a draft policy (draft → active); 409 from any other status."""
    row = await service.activate_policy(session, principal, policy_id, if_match)
    return _shaped(row, response)


@router.post("/policies/{policy_id}/cancel", response_model=PolicyPublic)
async def cancel_policy(
    policy_id: uuid.UUID,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    if_match: OptionalIfMatch = None,
    body: PolicyCancel | None = None,
) -> PolicyPublic:
    """Cancel a draft or active policy; 409 from any other status."""
    reason = body.reason if body else ""
    row = await service.cancel_policy(session, principal, policy_id, if_match, reason)
    return _shaped(row, response)


@router.post(
    "/policies/{policy_id}/renew", response_model=PolicyPublic, status_code=status.HTTP_201_CREATED
)
async def renew_policy(
    policy_id: uuid.UUID,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    body: PolicyRenew | None = None,
) -> PolicyPublic:
    """Create the draft renewal of an active or expired policy for its next term."""
    row = await service.renew_policy(session, principal, policy_id, body or PolicyRenew())
    response.headers["Location"] = f"/api/v1/deals/policies/{row.id}"
    return _shaped(row, response)
