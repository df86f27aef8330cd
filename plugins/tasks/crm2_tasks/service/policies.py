"""SLA policies (admin): targets per priority and tag on a calendar, and what a breach does."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version
from crm2_tasks.calendar import CalendarError
from crm2_tasks.errors import InvalidPolicy, NameTaken, SlaPolicyNotFound
from crm2_tasks.models import SlaPolicy
from crm2_tasks.repository import admin as repo
from crm2_tasks.schemas.admin import SlaPolicyCreate, SlaPolicyUpdate
from crm2_tasks.service import assignees
from crm2_tasks.service.calendars import as_business, get_calendar, reaches


async def get_policy(session: AsyncSession, policy_id: uuid.UUID) -> SlaPolicy:
    row = await repo.get(session, SlaPolicy, policy_id)
    if row is None:
        raise SlaPolicyNotFound(f"no SLA policy {policy_id}")
    return row


async def _check_role(session: AsyncSession, values: dict[str, Any]) -> None:
    """A role that does not exist would only show at the first breach, as a skipped
    escalation: refused when sent (one deleted later is skipped then, and reported)."""
    role = values.get("escalate_to_role")
    if role is not None and not await repo.role_exists(session, role):
        raise InvalidPolicy(f"escalate_to_role {role!r} is no role")


async def _check(session: AsyncSession, values: dict[str, Any]) -> None:
    if not values.get("response_minutes") and not values.get("resolution_minutes"):
        raise InvalidPolicy("give response_minutes, resolution_minutes or both")
    if values.get("calendar_id") is not None:
        row = await get_calendar(session, values["calendar_id"])
        # the built-in calendar (40 hours a week) fits any target up to the schema's year
        longest = max(values.get("response_minutes") or 0, values.get("resolution_minutes") or 0)
        try:
            usable = reaches(as_business(row), longest)
        except CalendarError:
            usable = False
        if not usable:
            raise InvalidPolicy(
                f"calendar {row.name!r} has fewer than {longest} working minutes "
                "within ten years: the timers could never be planned"
            )
    await assignees.check(session, values.get("escalate_to_user_id"), "escalate_to_user_id")


async def create_policy(session: AsyncSession, data: SlaPolicyCreate) -> SlaPolicy:
    values = data.model_dump()
    await _check(session, values)
    await _check_role(session, values)
    if await repo.name_taken(session, SlaPolicy, data.name):
        raise NameTaken(f"a policy is already called {data.name!r}")
    row: SlaPolicy = await repo.insert(session, SlaPolicy(**values))
    return row


async def update_policy(
    session: AsyncSession, policy_id: uuid.UUID, if_match: str, data: SlaPolicyUpdate
) -> SlaPolicy:
    row = await get_policy(session, policy_id)
    version = check_version(if_match, row.version)
    sent = data.model_dump(exclude_unset=True)
    merged = {**row.model_dump(), **sent}
    await _check(session, merged)
    await _check_role(session, sent)
    if "name" in sent and await repo.name_taken(session, SlaPolicy, sent["name"], row.id):
        raise NameTaken(f"a policy is already called {sent['name']!r}")
    values = {k: v for k, v in sent.items() if getattr(row, k) != v}
    if values:
        await repo.update(session, row, values, version)
    return row


async def delete_policy(
    session: AsyncSession, policy_id: uuid.UUID, if_match: str | None = None
) -> None:
    """Deleting a policy stops the timers it started (they go with it); a sent ``If-Match``
    must name its version."""
    await repo.delete(session, await get_policy(session, policy_id), if_match)
