"""The console plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from crm2_console.config import ConsoleSettings
from crm2_hookspecs import Crm2Context, PluginManifest, hookimpl

manifest = PluginManifest(
    name="console",
    title="Console",
    requires_core=">=0.1,<1",
    settings=ConsoleSettings,
    description="The web console at /, and the list of every enabled plugin's console sections.",
)


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_console.routes import router

    return [router]


@hookimpl
def crm2_configure(context: Crm2Context) -> None:
    """Collect every plugin's views once: a bad one stops start-up, naming the plugin."""
    from crm2_console.service import ConsoleViews, collect_views
    from crm2_core.api import AppContext

    assert isinstance(context, AppContext)
    context.provide(ConsoleViews, ConsoleViews(collect_views(context)))


@hookimpl
def crm2_web_root(context: Crm2Context) -> Any:
    from crm2_console.site import ConsoleSite

    settings: ConsoleSettings = context.plugin_settings("console")
    return ConsoleSite(settings.build_dir())
