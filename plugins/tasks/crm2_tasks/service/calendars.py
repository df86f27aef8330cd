"""Business calendars: stored ones, the built-in default, and their admin rules."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version, utcnow
from crm2_tasks.calendar import BusinessCalendar, CalendarError, zone_problems
from crm2_tasks.errors import CalendarInUse, CalendarNotFound, InvalidCalendar, NameTaken
from crm2_tasks.models import Calendar, SlaPolicy
from crm2_tasks.repository import admin as repo
from crm2_tasks.schemas.admin import CalendarCreate, CalendarUpdate


def default_calendar(context: Any) -> BusinessCalendar:
    """Monday to Friday 09:00-17:00 in ``CRM2_TASKS_TIMEZONE``."""
    return BusinessCalendar.standard(context.plugin_settings("tasks").timezone)


def as_business(row: Calendar) -> BusinessCalendar:
    return BusinessCalendar.from_spec(row.timezone, row.hours, row.holidays)


async def business_calendar(
    session: AsyncSession, context: Any, calendar_id: uuid.UUID | None
) -> BusinessCalendar:
    """The stored calendar, or the default when none is named (or it was deleted)."""
    if calendar_id is not None:
        for row in await repo.plain_rows(session, Calendar, id=calendar_id):
            return as_business(row)
    return default_calendar(context)


def reaches(calendar: BusinessCalendar, minutes: int) -> bool:
    """Whether ``minutes`` of working time from now fit within the calendar's horizon (an SLA
    target that does not could never be planned: every matching task create would fail)."""
    try:
        calendar.add(utcnow(), timedelta(minutes=minutes))
    except (CalendarError, OverflowError):
        return False
    return True


def longest_target(policy: SlaPolicy) -> int:
    return max(policy.response_minutes or 0, policy.resolution_minutes or 0)


def _checked(timezone: str, hours: Mapping[Any, Any], holidays: list[Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "timezone": timezone,
        "hours": {d: [list(p) for p in v] for d, v in hours.items()},
    }
    spec["holidays"] = sorted({str(d) for d in holidays})
    # a calendar stored in a zone refused since keeps it until its admin sets one: any other
    # change of it is refused meanwhile, naming the zone (as notifications does for its rules)
    for problem in zone_problems(timezone):
        raise InvalidCalendar(problem)
    try:
        BusinessCalendar.from_spec(spec["timezone"], spec["hours"], spec["holidays"])
    except CalendarError as exc:
        raise InvalidCalendar(str(exc)) from exc
    return spec


async def get_calendar(session: AsyncSession, calendar_id: uuid.UUID) -> Calendar:
    row = await repo.get(session, Calendar, calendar_id)
    if row is None:
        raise CalendarNotFound(f"no calendar {calendar_id}")
    return row


async def create_calendar(session: AsyncSession, data: CalendarCreate) -> Calendar:
    spec = _checked(data.timezone, data.hours, data.holidays)
    if await repo.name_taken(session, Calendar, data.name):
        raise NameTaken(f"a calendar is already called {data.name!r}")
    row: Calendar = await repo.insert(session, Calendar(name=data.name, **spec))
    return row


async def update_calendar(
    session: AsyncSession, calendar_id: uuid.UUID, if_match: str, data: CalendarUpdate
) -> Calendar:
    row = await get_calendar(session, calendar_id)
    version = check_version(if_match, row.version)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes and await repo.name_taken(session, Calendar, changes["name"], row.id):
        raise NameTaken(f"a calendar is already called {changes['name']!r}")
    spec = _checked(
        changes.get("timezone", row.timezone),
        changes.get("hours", row.hours),
        changes.get("holidays", row.holidays),
    )
    calendar = BusinessCalendar.from_spec(spec["timezone"], spec["hours"], spec["holidays"])
    for policy in await repo.plain_rows(session, SlaPolicy, calendar_id=row.id):
        if not reaches(calendar, longest_target(policy)):
            raise InvalidCalendar(
                f"SLA policy {policy.name!r} needs {longest_target(policy)} working minutes, "
                "more than this calendar has within ten years"
            )
    values = {k: v for k, v in spec.items() if k in changes}
    if "name" in changes:
        values["name"] = changes["name"]
    if values:
        await repo.update(session, row, values, version)
    return row


async def delete_calendar(
    session: AsyncSession, calendar_id: uuid.UUID, if_match: str | None = None
) -> None:
    """Delete a calendar no SLA policy uses; a sent ``If-Match`` must name its version."""
    row = await get_calendar(session, calendar_id)
    if if_match is not None:
        check_version(if_match, row.version)  # a stale one is 412 before the 409 below
    if await repo.calendar_in_use(session, row.id):
        raise CalendarInUse("an SLA policy uses this calendar: change the policy first")
    await repo.delete(session, row, if_match)
