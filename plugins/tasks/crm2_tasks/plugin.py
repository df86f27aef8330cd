"""The tasks plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from crm2_hookspecs import (
    ConsoleView,
    Crm2Context,
    EventHandler,
    Permission,
    PluginManifest,
    Principal,
    ScheduledJob,
    SseChannel,
    hookimpl,
)
from crm2_tasks.config import TasksSettings
from crm2_tasks.hookspecs import TasksSpec

manifest = PluginManifest(
    name="tasks",
    title="Tasks",
    requires_core=">=0.1,<1",
    settings=TasksSettings,
    hookspecs=(TasksSpec,),
    description="Tasks, reminders, recurrence, SLA timers on business calendars, automations.",
)

EVERYONE = ("admin", "manager", "agent", "viewer")
EDITORS = ("admin", "manager", "agent")


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_tasks.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission("tasks:read", "Read tasks and their SLA timers", EVERYONE),
        Permission("tasks:write", "Create, change, assign, complete and reopen tasks", EDITORS),
        Permission("tasks:delete", "Delete tasks", ("admin", "manager")),
        Permission("tasks:export", "Export tasks as CSV", ("admin", "manager")),
        Permission(
            "tasks:admin",
            "Manage business calendars, SLA policies and automation rules",
            ("admin",),
        ),
        Permission(
            "tasks:all_records",
            "See and edit every task, not only those assigned to or created by oneself",
            ("admin", "manager", "viewer"),
        ),
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_tasks.routes import routers

    return routers()


@hookimpl
def crm2_event_types() -> Sequence[type]:
    from crm2_tasks.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def crm2_event_handlers(context: Crm2Context) -> Sequence[EventHandler]:
    from crm2_tasks.handlers import handlers

    return handlers(context)


@hookimpl
def crm2_scheduled_jobs(context: Crm2Context) -> Sequence[ScheduledJob]:
    from crm2_tasks.jobs import scheduled_jobs

    return scheduled_jobs(context)


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    from crm2_tasks.console import VIEWS

    return VIEWS


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    from crm2_tasks.stream import channels

    return channels()


@hookimpl
def crm2_startup(context: Crm2Context) -> Awaitable[None]:
    from crm2_tasks.service.zones import warn_unplaced_zones

    async def start() -> None:
        await warn_unplaced_zones(context)  # series and calendars stored before the check

    return start()


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: Crm2Context, session: Any
) -> Awaitable[Mapping[str, Any] | None] | None:
    from crm2_tasks.resolve import KINDS, resolve_task

    if kind not in KINDS:
        return None
    return resolve_task(context, id, principal, session)


@hookimpl
def crm2_seed(name: str, context: Crm2Context) -> Awaitable[None] | None:
    from crm2_tasks.seeds import seed

    return seed(name, context)


@hookimpl
def crm2_cli(cli: Any) -> None:
    from crm2_tasks.cli import register

    register(cli)


# -- deals' hooks: tasks extends deals without depending on it ---------------------------


@hookimpl(optionalhook=True)
def crm2_deals_timeline(
    deal: Mapping[str, Any], session: Any, principal: Principal
) -> Awaitable[Sequence[Mapping[str, Any]]]:
    """The deal's linked tasks on its timeline (only called when deals is enabled)."""
    from crm2_tasks.deal_extensions import timeline

    return timeline(deal, session, principal)


@hookimpl(optionalhook=True)
def crm2_deals_extra_fields(
    deal: Mapping[str, Any], session: Any, principal: Principal
) -> Awaitable[Mapping[str, Any] | None]:
    """``open_tasks``: how many of the deal's tasks are open."""
    from crm2_tasks.deal_extensions import extra_fields

    return extra_fields(deal, session, principal)
