"""The notifications plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from crm2_hookspecs import (
    ConsoleView,
    Crm2Context,
    EventHandler,
    LoginConfirmation,
    Permission,
    PluginManifest,
    ScheduledJob,
    SseChannel,
    hookimpl,
)
from crm2_notifications.config import NotificationsSettings
from crm2_notifications.hookspecs import NotificationChannel, NotificationsSpec

manifest = PluginManifest(
    name="notifications",
    title="Notifications",
    requires_core=">=0.1,<1",
    settings=NotificationsSettings,
    hookspecs=(NotificationsSpec,),
    description="Rules turn every plugin's events into an in-app feed, e-mail, Telegram "
    "and outbound webhooks, with preferences, digests, dedup and rate limits.",
)

EVERYONE = ("admin", "manager", "agent", "viewer")


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_notifications.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission(
            "notifications:read",
            "Read one's own notification feed, set one's preferences, link Telegram",
            EVERYONE,
        ),
        Permission(
            "notifications:admin",
            "Manage notification rules and webhook subscriptions; read the delivery log",
            ("admin",),
        ),
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_notifications.routes import routers

    return routers()


@hookimpl
def crm2_event_types() -> Sequence[type]:
    from crm2_notifications.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def crm2_event_handlers(context: Crm2Context) -> Sequence[EventHandler]:
    from crm2_notifications.handlers import handlers

    return handlers(context)


@hookimpl
def crm2_scheduled_jobs(context: Crm2Context) -> Sequence[ScheduledJob]:
    from crm2_notifications.jobs import scheduled_jobs

    return scheduled_jobs(context)


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    from crm2_notifications.stream import channels

    return channels()


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    from crm2_notifications.console import VIEWS

    return VIEWS


@hookimpl
def crm2_startup(context: Crm2Context) -> Awaitable[None]:
    from crm2_notifications.service.rules import sync_default_rules, warn_unusable_rules

    async def start() -> None:
        await sync_default_rules(context)
        await warn_unusable_rules(context)  # rules stored before a check refused them

    return start()


@hookimpl
def crm2_seed(name: str, context: Crm2Context) -> Awaitable[None] | None:
    from crm2_notifications.seeds import seed

    return seed(name, context)


@hookimpl
def crm2_confirm_login(
    login: LoginConfirmation, context: Crm2Context, session: Any
) -> Awaitable[bool | None] | None:
    """Users who linked Telegram and switched it on confirm sign-ins with the bot's buttons."""
    from crm2_notifications.service import login_confirm

    if not login_confirm.telegram_on(context):
        return None
    return login_confirm.ask(login, context, session)


@hookimpl
def crm2_notifications_channels(context: Crm2Context) -> Sequence[NotificationChannel]:
    """The four built-in channels, through the same hook a third party's use."""
    from crm2_notifications.channels.email import EmailChannel
    from crm2_notifications.channels.inapp import InAppChannel
    from crm2_notifications.channels.telegram import TelegramChannel
    from crm2_notifications.channels.webhook import WebhookChannel

    rate = context.plugin_settings("notifications").telegram_rate_per_second
    return [InAppChannel(), EmailChannel(), TelegramChannel(rate), WebhookChannel()]


@hookimpl
def crm2_notifications_default_rules() -> Sequence[dict[str, Any]]:
    """The rules for the core's sign-in events (``auth.login.delayed``, ``.confirmation_denied``):
    the core cannot ship them, it knows nothing of notifications."""
    from crm2_notifications.auth_rules import RULES

    return RULES
