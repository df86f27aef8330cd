"""Hello's manifest and hooks: the only wiring, loaded through the ``crm2.plugins`` entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from crm2_hello.config import HelloSettings
from crm2_hookspecs import ConsoleView, Permission, PluginManifest, hookimpl

manifest = PluginManifest(
    name="hello",
    title="Hello (example plugin)",
    requires_core=">=0.1,<1",
    settings=HelloSettings,
    description="Greetings: the smallest complete crm2 plugin, to copy.",
)


# Models, services and routes are imported inside the hooks: discovery imports
# this module even when the plugin is disabled, and a disabled plugin should
# put nothing into the shared metadata or the app.


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_hello.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission(
            "hello:read", "See greetings", default_roles=("admin", "manager", "agent", "viewer")
        ),
        Permission(
            "hello:write",
            "Create, change and delete greetings",
            default_roles=("admin", "manager", "agent"),
        ),
        Permission("hello:export", "Export greetings as CSV", default_roles=("admin", "manager")),
        # The record rule (crm2_hello.service.RULES): without it, one's own greetings only.
        Permission(
            "hello:all_records",
            "See and change every owner's greetings, not only one's own",
            default_roles=("admin", "manager", "viewer"),
        ),
    ]


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    """Hello's section in the web console, rendered from these fields and /openapi.json."""
    return [
        ConsoleView(
            key="hello.greetings",
            title="Greetings",
            titles={"ru": "Приветствия"},
            list_path="/api/v1/hello/greetings",
            item_path="/api/v1/hello/greetings/{id}",
            permission="hello:read",
            write_permission="hello:write",
            item_schema="GreetingPublic",
            create_schema="GreetingCreate",
            update_schema="GreetingUpdate",
            columns=("name", "message", "created_at"),
            form=("name",),
            edit=("message",),
            order=50,
        )
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_hello.routes import router

    return [router]
