"""Finding, checking, ordering and calling plugins."""

from __future__ import annotations

from crm2_core.plugins.discovery import InstalledPlugin, discover_installed
from crm2_core.plugins.manager import PluginRegistry, build_plugin_manager

__all__ = ["InstalledPlugin", "PluginRegistry", "build_plugin_manager", "discover_installed"]
