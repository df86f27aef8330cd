"""Who may be given a task: an active user whose roles grant ``tasks:read``.

One rule for a new task's assignee, a manual assignment, an SLA policy's escalation
target and the escalation itself: a task given to someone who may not read tasks would
sit with a person who can never see it.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import user_grants
from crm2_tasks.errors import AssigneeNotPermitted, InvalidAssignee

READ = "tasks:read"
INACTIVE = "inactive"
NOT_PERMITTED = "lacks_tasks_read"


async def refusal(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    """Why ``user_id`` may not be given a task (``inactive``, ``lacks_tasks_read``), or
    ``None`` when they may. Their roles as they are now, in one read in ``session``."""
    granted = await user_grants(session, user_id, (READ,))
    if granted is None:
        return INACTIVE
    return None if READ in granted else NOT_PERMITTED


async def check(session: AsyncSession, user_id: uuid.UUID | None, what: str = "assignee") -> None:
    """422 unless ``user_id`` (``None``: nobody) may be given a task."""
    if user_id is None:
        return
    reason = await refusal(session, user_id)
    if reason == INACTIVE:
        raise InvalidAssignee(f"{what} {user_id} is not an active user")
    if reason is not None:
        raise AssigneeNotPermitted(
            f"{what} {user_id} cannot be given tasks: their roles do not grant {READ}"
        )
