"""What tasks adds to a deal through deals' own hooks (``crm2_deals_timeline``, ``…_extra_fields``).

tasks does not depend on deals: the hooks are ``optionalhook`` implementations,
never called while deals is off. Only tasks the asking user may see count, and none
at all for a user without ``tasks:read`` (a right taken away stops here too, and so
does a ``crm2_check_permission`` hook denying it, as it does on the task routes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import permitted_in_session
from crm2_hookspecs import Principal
from crm2_tasks.models import Task
from crm2_tasks.visibility import TaskVisibility

TIMELINE_LIMIT = 50
READ = "tasks:read"


def _linked(deal: Mapping[str, Any], session: AsyncSession, principal: Principal) -> list[Any]:
    return [
        col(Task.link_kind) == "deals.deal",
        col(Task.link_id) == str(deal["id"]),
        TaskVisibility.in_session(session, principal).where(Task),
    ]


async def timeline(
    deal: Mapping[str, Any], session: AsyncSession, principal: Principal
) -> list[dict[str, Any]]:
    """One entry per task linked to the deal: when it was created, its title and status."""
    if not permitted_in_session(session, principal, READ):
        return []
    rows = await session.execute(
        select(Task)
        .where(*_linked(deal, session, principal))
        .order_by(col(Task.created_at).desc())
        .limit(TIMELINE_LIMIT)
    )
    return [
        {
            "at": task.created_at,
            "kind": "task",
            "title": f"Task: {task.title} ({task.status})",
            "link": {"kind": "tasks.task", "id": str(task.id)},
        }
        for task in rows.scalars()
    ]


async def extra_fields(
    deal: Mapping[str, Any], session: AsyncSession, principal: Principal
) -> dict[str, Any] | None:
    """How many of the deal's tasks are open (of those the user may see); nothing without
    ``tasks:read``."""
    if not permitted_in_session(session, principal, READ):
        return None
    open_tasks = await session.execute(
        select(func.count())
        .select_from(Task)
        .where(*_linked(deal, session, principal), col(Task.is_open))
    )
    return {"open_tasks": int(open_tasks.scalar_one())}
