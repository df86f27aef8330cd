"""The time every tasks rule reads: the real UTC clock, or a test's.

Tests call ``set_clock(context, clock)`` with a callable returning an aware
datetime, and every due date, reminder, SLA timer and automation then runs on
that clock. It lives on the application context (a ``TasksClock`` service), so
two apps in one process never share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm2_core.api import AppContext, utcnow


@dataclass
class TasksClock:
    """The clock the tasks plugin runs on; ``fixed`` is ``None`` for the real one."""

    fixed: Callable[[], datetime] | None = None


def now(context: Any) -> datetime:
    clock = context.find(TasksClock) if isinstance(context, AppContext) else None
    return clock.fixed() if clock is not None and clock.fixed is not None else utcnow()


def set_clock(context: AppContext, clock: Callable[[], datetime] | None) -> None:
    """Run the plugin on ``clock`` (``None``: the real clock again)."""
    current = context.find(TasksClock)
    if current is None:
        context.provide(TasksClock, TasksClock(clock))
    else:
        current.fixed = clock
