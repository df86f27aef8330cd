"""The backup plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from crm2_backup.config import BackupSettings
from crm2_backup.hookspec import BackupSpec
from crm2_hookspecs import (
    ConsoleView,
    Crm2Context,
    EventHandler,
    Permission,
    PluginManifest,
    ScheduledJob,
    SseChannel,
    hookimpl,
)

manifest = PluginManifest(
    name="backup",
    title="Backup",
    requires_core=">=0.1,<1",
    settings=BackupSettings,
    hookspecs=(BackupSpec,),
    description="Scheduled, encrypted, verified backups; restore, restore drills, retention.",
)


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_backup.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission("backup:read", "See backup sets, runs, drills and the RPO", ("admin",)),
        Permission("backup:run", "Run backups, restore drills and retention now", ("admin",)),
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_backup.routes import routers

    return routers()


@hookimpl
def crm2_event_types() -> Sequence[type]:
    from crm2_backup.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def crm2_event_handlers(context: Crm2Context) -> Sequence[EventHandler]:
    from crm2_backup.handlers import handlers

    return handlers(context)


@hookimpl
def crm2_scheduled_jobs(context: Crm2Context) -> Sequence[ScheduledJob]:
    from crm2_backup.jobs import scheduled_jobs

    return scheduled_jobs(context)


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    from crm2_backup.console import VIEWS

    return VIEWS


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    from crm2_backup.stream import channels

    return channels()


@hookimpl
def crm2_startup(context: Crm2Context) -> None:
    """Stop start-up when CRM2_BACKUP_DESTINATION names a destination nobody provides."""
    from crm2_backup.errors import UnknownDestination
    from crm2_backup.service.destinations import configured
    from crm2_core.api import ConfigurationError

    try:
        configured(context)
    except UnknownDestination as exc:
        raise ConfigurationError(f"backup: {exc.detail}") from None


@hookimpl
def crm2_backup_targets(context: Crm2Context) -> Sequence[Any]:
    from crm2_backup.targets.builtin import builtin_targets

    return builtin_targets(context)


@hookimpl
def crm2_cli(cli: Any) -> None:
    from crm2_backup.cli import register

    register(cli)


@hookimpl(optionalhook=True)
def crm2_notifications_default_rules() -> Sequence[Mapping[str, Any]]:
    """Backup failed and restore drill failed, to admins (when notifications is enabled)."""
    from crm2_backup.notification_rules import RULES

    return RULES
