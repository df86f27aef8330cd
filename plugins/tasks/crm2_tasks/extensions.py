"""Calling the hook tasks offers (``hookspecs.py``)."""

from __future__ import annotations

import inspect
from typing import Any

from crm2_hookspecs import Principal
from crm2_tasks.errors import TaskChangeVetoed
from crm2_tasks.hookspecs import TaskChange


async def vet(context: Any, session: Any, principal: Principal, change: TaskChange) -> None:
    """422 ``tasks-change-vetoed`` when any plugin refuses the change (the first one is named)."""
    for plugin, result in context.plugins.call(
        "crm2_tasks_validate_change",
        change=change,
        session=session,
        principal=principal,
        context=context,
    ):
        reason = await result if inspect.isawaitable(result) else result
        if reason is not None:
            raise TaskChangeVetoed(f"{plugin} refused this change: {reason}")
