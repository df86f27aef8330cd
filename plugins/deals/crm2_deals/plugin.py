"""The deals plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastapi import APIRouter

from crm2_deals.config import DealsSettings
from crm2_deals.hookspecs import DealsSpec
from crm2_hookspecs import (
    ConsoleView,
    Crm2Context,
    Permission,
    PluginManifest,
    Principal,
    ScheduledJob,
    SseChannel,
    hookimpl,
)

if TYPE_CHECKING:
    from crm2_core.api import AppContext

manifest = PluginManifest(
    name="deals",
    title="Deals",
    requires_core=">=0.1,<1",
    settings=DealsSettings,
    hookspecs=(DealsSpec,),
    description="Clients, contacts, pipelines, deals, insurance policies and activities.",
)

EVERYONE = ("admin", "manager", "agent", "viewer")
EDITORS = ("admin", "manager", "agent")


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_deals.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission("deals:read", "Read clients, deals, policies and activities", EVERYONE),
        Permission(
            "deals:write", "Create and change clients, deals, policies, activities", EDITORS
        ),
        Permission(
            "deals:delete", "Delete clients, deals, policies and activities", ("admin", "manager")
        ),
        Permission("deals:export", "Export clients and deals as CSV", ("admin", "manager")),
        Permission("deals:import", "Import clients from CSV", ("admin", "manager")),
        Permission("deals:admin", "Manage pipelines, stages and lost reasons", ("admin",)),
        Permission(
            "deals:all_records",
            "See and edit every owner's records, not only one's own",
            ("admin", "manager", "viewer"),
        ),
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_deals.routes import routers

    return routers()


@hookimpl
def crm2_event_types() -> Sequence[type]:
    from crm2_deals.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def crm2_scheduled_jobs() -> Sequence[ScheduledJob]:
    from crm2_deals.jobs import scheduled_jobs

    return scheduled_jobs()


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    from crm2_deals.stream import channels

    return channels()


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: Crm2Context, session: Any
) -> Awaitable[Mapping[str, Any] | None] | None:
    if not kind.startswith("deals."):
        return None
    from crm2_deals.links import RESOLVER

    return RESOLVER(kind, id, principal, cast("AppContext", context), session)


@hookimpl
def crm2_seed(name: str, context: Crm2Context) -> Awaitable[None] | None:
    from crm2_deals.seeds import seed

    result: Awaitable[None] | None = seed(name, cast("AppContext", context))
    return result


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    from crm2_deals.console import VIEWS

    return VIEWS


@hookimpl
def crm2_cli(cli: Any) -> None:
    from crm2_deals.cli import register

    register(cli)


@hookimpl
def crm2_reassign_user(
    from_user: uuid.UUID,
    to_user: uuid.UUID,
    session: Any,
    actor: Principal | None,
    context: Crm2Context,
) -> Awaitable[Mapping[str, int]]:
    """Clients, deals, policies and activities go to the new owner (``reassign.py``)."""
    from crm2_deals.reassign import reassign_owner

    return reassign_owner(session, from_user, to_user, actor, cast("AppContext", context))


@hookimpl(optionalhook=True)
def crm2_notifications_default_rules() -> Sequence[Mapping[str, Any]]:
    """Deal won and policy renewal due, for the notifications plugin (when it is enabled)."""
    from crm2_deals.notification_rules import RULES

    return RULES
