"""The time every tasks rule reads: the real UTC clock, or a test's.

Tests set ``context.state["tasks"]["clock"]`` to a callable returning an aware
datetime, and every due date, reminder, SLA timer and automation then runs on
that clock. It lives on the application context, so two apps in one process
never share it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from crm2_core.api import utcnow


def now(context: Any) -> datetime:
    state = getattr(context, "state", None) or {}
    fixed: Callable[[], datetime] | None = state.get("tasks", {}).get("clock")
    return fixed() if fixed is not None else utcnow()


def set_clock(context: Any, clock: Callable[[], datetime] | None) -> None:
    """Run the plugin on ``clock`` (``None``: the real clock again)."""
    context.state.setdefault("tasks", {})["clock"] = clock
