"""``/api/v1/console``: what the web console needs to know about this deployment."""

from __future__ import annotations

from fastapi import Request

from crm2_console.schemas import ConsoleManifest
from crm2_console.service import manifest_for
from crm2_core.api import APIRouter, ContextDep, CurrentPrincipal, has_permission

router = APIRouter(prefix="/api/v1/console", tags=["console"])


@router.get("/views", response_model=ConsoleManifest)
async def list_views(
    principal: CurrentPrincipal, context: ContextDep, request: Request
) -> ConsoleManifest:
    """Enabled plugins and the console sections the caller may open (any signed-in user)."""
    return manifest_for(context, lambda permission: has_permission(request, principal, permission))
