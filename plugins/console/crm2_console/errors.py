"""The console plugin's errors."""

from __future__ import annotations

from crm2_core.api import ConfigurationError


class BadConsoleView(ConfigurationError):
    """A plugin's ``crm2_console_views`` returned something that is not a valid view."""
