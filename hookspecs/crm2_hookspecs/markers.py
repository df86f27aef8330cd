"""The pluggy markers of the crm2 project."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "crm2"
ENTRY_POINT_GROUP = "crm2.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
