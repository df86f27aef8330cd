"""The ``core`` default plugin, the HTTP shell: health, plugin listing, the core's migrations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Response
from pydantic import TypeAdapter

from crm2_core.context import AppContext, ServiceKey
from crm2_core.http.deps import ContextDep
from crm2_core.http.health import builtin_checks
from crm2_core.http.health import router as health_router
from crm2_core.http.models import MODELS
from crm2_core.http.principal import require
from crm2_core.http.routing import APIRouter
from crm2_core.migration_paths import environment_dir
from crm2_core.plugins.manager import PluginStatus
from crm2_core.schemas import ResponseModel
from crm2_hookspecs import HealthCheck, Permission, PluginManifest, Principal, hookimpl

manifest = PluginManifest(
    name="core",
    title="crm2 core",
    description="The HTTP shell: health, problem+json, pagination, idempotency, plugin listing.",
)

plugins_router = APIRouter(prefix="/api/v1", tags=["plugins"])
PluginsAdmin = Annotated[Principal, Depends(require("core:plugins"))]


class PluginInfo(ResponseModel):
    name: str
    title: str
    version: str
    enabled: bool
    builtin: bool
    depends: list[str]
    status: str


_PLUGIN_LIST = TypeAdapter(list[PluginInfo])
# The listing is fixed when the application is built (which plugins are installed,
# enabled, or failed to load), so it is validated and serialised once, not per request.
PLUGIN_LIST_BODY: ServiceKey[bytes] = ServiceKey("core.plugin_list_body")


def plugin_list_body(context: AppContext) -> bytes:
    body = context.find(PLUGIN_LIST_BODY)
    if body is None:
        rows: list[PluginStatus] = context.plugins.statuses()
        infos = [
            PluginInfo.model_validate({**row.__dict__, "depends": list(row.depends)})
            for row in rows
        ]
        body = _PLUGIN_LIST.dump_json(infos, by_alias=True)
        context.provide(PLUGIN_LIST_BODY, body)
    return body


@plugins_router.get("/plugins", response_model=list[PluginInfo])
async def list_plugins(_: PluginsAdmin, context: ContextDep) -> Response:
    """Installed plugins: version, whether enabled, dependencies and status."""
    return Response(plugin_list_body(context), media_type="application/json")


@hookimpl
def crm2_models() -> Sequence[type]:
    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return environment_dir() / "versions" / "core"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [Permission("core:plugins", "See installed plugins and their status")]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    return [health_router, plugins_router]


@hookimpl
def crm2_health_checks(context: AppContext) -> Sequence[HealthCheck]:
    return builtin_checks(context)
