"""Assembling the application context: what ``crm2 serve``, the CLI and ``crm2 worker`` share.

No web layer here: the HTTP app (``crm2_core.http.app``) is built on top of
this, and the CLI and the worker use it without importing FastAPI's app.
Everything the core runs is a default plugin (core, events, auth, streams),
built through the same ``crm2_configure`` hook as any other plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm2_core.context import AppContext, build_context
from crm2_core.errors import ConfigurationError
from crm2_core.plugins import PluginRegistry, build_plugin_manager
from crm2_core.plugins.manager import plugin_errors_reported
from crm2_core.settings import Settings


def build_app_context(
    settings: Settings,
    *,
    extra_plugins: tuple[object, ...] = (),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> AppContext:
    """Plugins, database, Redis and every plugin's services, configured in dependency order.

    :raises ConfigurationError: naming the plugin and the fix.
    """
    registry = build_plugin_manager(
        settings, extra_plugins=extra_plugins, plugin_settings=plugin_settings
    )
    context = build_context(settings, registry)
    with plugin_errors_reported(registry):
        check_permission_names(registry)
        registry.call("crm2_configure", context=context)
    return context


def check_permission_names(registry: PluginRegistry) -> None:
    for plugin, permission in registry.collect("crm2_permissions"):
        if not permission.name.startswith(f"{plugin}:"):
            raise ConfigurationError(
                f"{plugin} declares permission {permission.name!r}; a plugin's permissions "
                f"start with its name: rename it to {plugin}:…"
            )
