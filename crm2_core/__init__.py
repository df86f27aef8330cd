"""crm2-core: authentication, the event bus, the HTTP shell and the plugin manager."""

from __future__ import annotations

__version__ = "0.1.0"
