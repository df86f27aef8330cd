"""``GET /metrics``: Prometheus exposition, for allowed networks or the metrics:read permission."""

from __future__ import annotations

import ipaddress

from fastapi import Request, Response

from crm2_core.errors import Forbidden, NotFound, Unauthorized
from crm2_core.http.deps import ContextDep
from crm2_core.http.routing import APIRouter
from crm2_core.observability.metrics import metrics_of

router = APIRouter(tags=["metrics"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PERMISSION = "metrics:read"


def _from_allowed_network(request: Request, settings: object) -> bool:
    client = request.client
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    return any(address in network for network in settings.networks())  # type: ignore[attr-defined]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, context: ContextDep) -> Response:
    """Prometheus metrics of this process."""
    found = metrics_of(context)
    if found is None:
        raise NotFound("metrics are off: set CRM2_METRICS_ENABLED=true")
    if not _from_allowed_network(request, context.plugin_settings("metrics")):
        authenticator = context.authenticator
        principal = await authenticator.from_scope(request.scope)
        if principal is None:
            raise Unauthorized(
                "this network is not in CRM2_METRICS_ALLOW_NETWORKS: send a bearer token "
                f"or API key with {PERMISSION}"
            )
        from crm2_core.auth.deps import has_permission

        if not has_permission(request, principal, PERMISSION):
            raise Forbidden(f"this needs the {PERMISSION} permission")
    found.collect_process_state()
    await found.collect_database_state()
    return Response(found.exposition(), media_type=CONTENT_TYPE)
