"""Hello's manifest and hooks: the only wiring, loaded through the ``crm2.plugins`` entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from crm2_hello.config import HelloSettings
from crm2_hookspecs import Crm2Context, Permission, PluginManifest, hookimpl

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
            "Create and change greetings",
            default_roles=("admin", "manager", "agent"),
        ),
    ]


@hookimpl
def crm2_configure(context: Crm2Context) -> None:
    from crm2_hello.service import HelloService

    settings: HelloSettings = context.plugin_settings("hello")
    context.provide(HelloService, HelloService(settings))


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_hello.routes import router

    return [router]
