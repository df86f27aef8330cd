"""`/api/v1/deals/policies` routes."""

from __future__ import annotations

import uuid

from fastapi import Response, status

from crm2_core.api import (
    APIRouter,
    OptionalIfMatch,
    SessionDep,
    create_route,
    created,
    list_query,
    list_route,
    present,
    record_routes,
)
from crm2_deals.repository import policies as repo
from crm2_deals.routes.deps import PERMISSIONS, DealsWrite
from crm2_deals.schemas.policies import (
    PolicyCancel,
    PolicyCreate,
    PolicyFilters,
    PolicyPublic,
    PolicyRenew,
    PolicyUpdate,
)
from crm2_deals.service import policies as service

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])


policy_query = list_query(PolicyFilters, repo.POLICY_SORTS)


list_route(
    router, "/policies", PolicyPublic.values, response_model=PolicyPublic, permission="deals:read",
    fetch=service.list_policies, query=policy_query, name="list_policies",
    doc="Policies the caller may see, filtered and sorted, cursor-paginated.",
)  # fmt: skip
create_route(
    router, "/policies", PolicyPublic.of, response_model=PolicyPublic, permission="deals:write",
    body=PolicyCreate, create=service.create_policy, location="/policies/{id}",
    name="create_policy",
    doc="Record a policy (a draft unless ``status`` is ``active``); 409 when the number is taken.",
)  # fmt: skip


record_routes(
    router, "/policies/{policy_id}", PolicyPublic.of, response_model=PolicyPublic,
    permissions=PERMISSIONS, get=service.get_policy,
    update=(PolicyUpdate, service.update_policy), delete=service.delete_policy,
    docs=("One policy; the ETag header is what a later PATCH sends as If-Match.",
          "Change a policy's fields (If-Match required); the status has its own actions.",
          "Delete a policy and its activities."),
)  # fmt: skip


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
    return present(response, PolicyPublic.of(row))


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
    return present(response, PolicyPublic.of(row))


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
    return created(response, f"/api/v1/deals/policies/{row.id}", PolicyPublic.of(row))
