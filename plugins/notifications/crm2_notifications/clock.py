"""The time notifications run on: the real UTC clock, or a test's (quiet hours, digests).

``set_clock(context, clock)`` lives on the application context, so two apps in
one process never share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm2_core.api import AppContext, utcnow


@dataclass
class NotificationsClock:
    fixed: Callable[[], datetime] | None = None


def now(context: Any) -> datetime:
    clock = context.find(NotificationsClock) if isinstance(context, AppContext) else None
    return clock.fixed() if clock is not None and clock.fixed is not None else utcnow()


def set_clock(context: AppContext, clock: Callable[[], datetime] | None) -> None:
    current = context.find(NotificationsClock)
    if current is None:
        context.provide(NotificationsClock, NotificationsClock(clock))
    else:
        current.fixed = clock
