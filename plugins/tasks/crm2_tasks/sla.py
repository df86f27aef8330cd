"""SLA timers: response and resolution targets in business time, with pauses.

Pure arithmetic over a ``BusinessCalendar``. A timer started at ``started_at``
with ``target`` business time is due when ``target`` of business time has
passed *outside* pauses; pauses are measured in business time too (a task
waiting over a weekend loses no SLA time it would not have lost anyway). So::

    due_at  = calendar.add(started_at, target + paused)
    warn_at = calendar.add(started_at, target * warning_share + paused)

and when a pause ends, ``paused += calendar.between(paused_since, now)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from crm2_tasks.calendar import BusinessCalendar

PRIORITIES = ("low", "normal", "high", "urgent")
RESPONSE, RESOLUTION = "response", "resolution"


@dataclass(frozen=True)
class TimerPlan:
    warn_at: datetime | None
    due_at: datetime


def plan(
    calendar: BusinessCalendar,
    started_at: datetime,
    target: timedelta,
    warning_share: float | None,
    paused: timedelta = timedelta(0),
) -> TimerPlan:
    """When a timer warns and breaches, given the business time it has been paused."""
    due = calendar.add(started_at, target + paused)
    warn = None
    if warning_share is not None and 0 < warning_share < 1:
        warn = calendar.add(started_at, target * warning_share + paused)
    return TimerPlan(warn_at=warn, due_at=due)


def paused_after_resume(
    calendar: BusinessCalendar, paused: timedelta, paused_since: datetime, now: datetime
) -> timedelta:
    """The timer's paused business time once a pause that began at ``paused_since`` ends."""
    return paused + calendar.between(paused_since, now)


def elapsed(
    calendar: BusinessCalendar,
    started_at: datetime,
    now: datetime,
    paused: timedelta,
    paused_since: datetime | None = None,
) -> timedelta:
    """Business time counted against the target so far."""
    end = paused_since if paused_since is not None else now
    return max(calendar.between(started_at, end) - paused, timedelta(0))


def raised(priority: str) -> str:
    """One level up, ``urgent`` stays ``urgent``."""
    index = PRIORITIES.index(priority)
    return PRIORITIES[min(index + 1, len(PRIORITIES) - 1)]


class PolicyLike(Protocol):
    priority: str | None
    tag: str | None
    active: bool
    name: str


P = TypeVar("P", bound=PolicyLike)


def choose_policy(policies: Iterable[P], priority: str, tags: Sequence[str]) -> P | None:
    """The most specific active policy for a task: priority and tag > tag > priority > any."""
    best: tuple[int, str] | None = None
    chosen: P | None = None
    for policy in policies:
        if not policy.active:
            continue
        if policy.priority is not None and policy.priority != priority:
            continue
        if policy.tag is not None and policy.tag not in tags:
            continue
        score = (2 if policy.tag is not None else 0) + (1 if policy.priority is not None else 0)
        # higher score wins; among equals the alphabetically first name, so the choice is stable
        key = (-score, policy.name)
        if best is None or key < best:
            best, chosen = key, policy
    return chosen
