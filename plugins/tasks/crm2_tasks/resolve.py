"""``crm2_resolve_entity`` for ``tasks.task``: a task as other plugins may see it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_hookspecs import Principal
from crm2_tasks.repository.tasks import get_task
from crm2_tasks.visibility import TaskVisibility

KINDS = ("tasks.task",)


async def resolve_task(
    context: Any, id: str, principal: Principal | None, session: AsyncSession | None = None
) -> Mapping[str, Any] | None:
    try:
        task_id = uuid.UUID(str(id))
    except ValueError:
        return None
    if session is not None:
        task = await get_task(session, TaskVisibility.of(principal, context), task_id)
    else:
        async with context.session_factory() as own:
            task = await get_task(own, TaskVisibility.of(principal, context), task_id)
    if task is None:
        return None
    return {
        "kind": "tasks.task",
        "id": str(task.id),
        "title": task.title,
        "status": task.status,
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "assignee_id": str(task.assignee_id) if task.assignee_id else None,
    }
