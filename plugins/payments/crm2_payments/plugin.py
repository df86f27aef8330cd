"""The payments plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

import uuid
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
from crm2_payments.config import PaymentsSettings

manifest = PluginManifest(
    name="payments",
    title="Payments",
    requires_core=">=0.1,<1",
    settings=PaymentsSettings,
    description="Premium schedules, exact money, allocations and refunds, commissions, "
    "reconciliation, provider webhooks and the payments stream.",
)

EVERYONE = ("admin", "manager", "agent", "viewer")


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_payments.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission("payments:read", "Read payments, schedules, balances and commissions", EVERYONE),
        Permission(
            "payments:write",
            "Record and change payments, receive money and refund it",
            ("admin", "manager", "agent"),
        ),
        Permission("payments:export", "Export payments as CSV", ("admin", "manager")),
        Permission(
            "payments:reconcile",
            "Upload bank statements and match their lines",
            ("admin", "manager"),
        ),
        Permission(
            "payments:admin", "Manage commission rules and build held schedules", ("admin",)
        ),
        Permission(
            "payments:all_records",
            "See every payment, not only those of one's own records",
            ("admin", "manager", "viewer"),
        ),
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_payments.routes import routers

    return routers()


@hookimpl
def crm2_event_types() -> Sequence[type]:
    from crm2_payments.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def crm2_event_handlers(context: Crm2Context) -> Sequence[EventHandler]:
    from crm2_payments.handlers import handlers

    return handlers(context)


@hookimpl
def crm2_scheduled_jobs(context: Crm2Context) -> Sequence[ScheduledJob]:
    from crm2_payments.jobs import scheduled_jobs

    return scheduled_jobs(context)


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    from crm2_payments.stream import channels

    return channels()


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    from crm2_payments.console import VIEWS

    return VIEWS


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: Crm2Context, session: Any = None
) -> Awaitable[Mapping[str, Any] | None] | None:
    if not kind.startswith("payments."):
        return None
    from crm2_payments.links import RESOLVER

    return RESOLVER(kind, id, principal, context, session)  # type: ignore[arg-type]


@hookimpl
def crm2_reassign_user(
    from_user: uuid.UUID, to_user: uuid.UUID, session: Any, actor: Principal | None
) -> Awaitable[Mapping[str, int]]:
    """A leaving user's payments, schedules, ledger and commissions go to the new owner."""
    from crm2_payments.service.owners import reassign_user

    return reassign_user(session, from_user, to_user, actor)


@hookimpl
def crm2_seed(name: str, context: Crm2Context) -> Awaitable[None] | None:
    from crm2_payments.seeds import seed

    return seed(name, context)
