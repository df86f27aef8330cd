"""crm2's plugin contract: markers, hook specifications and the records they carry."""

from __future__ import annotations

from crm2_hookspecs.markers import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec
from crm2_hookspecs.records import (
    BUILTIN_ROLES,
    ConsoleView,
    Crm2Context,
    EventHandler,
    HealthCheck,
    LoginConfirmation,
    Permission,
    PluginManifest,
    Principal,
    ScheduledJob,
    SseChannel,
)
from crm2_hookspecs.spec import Crm2Spec

__all__ = [
    "BUILTIN_ROLES",
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "ConsoleView",
    "Crm2Context",
    "Crm2Spec",
    "EventHandler",
    "HealthCheck",
    "LoginConfirmation",
    "Permission",
    "PluginManifest",
    "Principal",
    "ScheduledJob",
    "SseChannel",
    "hookimpl",
    "hookspec",
]
