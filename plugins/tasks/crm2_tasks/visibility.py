"""Record-level rules: who sees which tasks.

Holders of ``tasks:all_records`` (admin, manager, viewer by default) see every
task; anyone else sees the tasks assigned to them or created by them. Every
query takes a ``TaskVisibility`` and applies it in SQL, so get (404), lists,
views, the export, the iCalendar feed and the ``tasks`` stream agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, true

from crm2_core.api import acting_user
from crm2_hookspecs import Principal

ALL_RECORDS = "tasks:all_records"


def assigned_or_created(columns: tuple[Any, ...], user: Any) -> Any:
    """The rule's clause on ``(assignee_id, creator_id)``: ``user`` a value or a bind
    parameter (the repository's lists take it as a condition of their shape)."""
    assignee, creator = columns
    return or_(assignee == user, creator == user)


@dataclass(frozen=True)
class TaskVisibility:
    """``user_id is None``: every task; otherwise the tasks that user is assigned or created."""

    user_id: uuid.UUID | None

    @classmethod
    def of(cls, principal: Principal | None) -> TaskVisibility:
        if principal is None or principal.has_permission(ALL_RECORDS):
            return cls(user_id=None)
        return cls(user_id=acting_user(principal))

    @classmethod
    def system(cls) -> TaskVisibility:
        return cls(user_id=None)

    def where(self, model: Any) -> Any:
        if self.user_id is None:
            return true()
        return assigned_or_created((model.assignee_id, model.creator_id), self.user_id)

    def allows(self, assignee_id: Any, creator_id: Any) -> bool:
        if self.user_id is None:
            return True
        return str(self.user_id) in (str(assignee_id), str(creator_id))


def _data(event: Any) -> Mapping[str, Any]:
    data = event.get("data") if isinstance(event, Mapping) else getattr(event, "data", None)
    return data if isinstance(data, Mapping) else {}


async def can_see(principal: Principal, event: Any, context: Any = None) -> bool:
    """The ``tasks`` stream's rule: every tasks event carries assignee and creator."""
    data = _data(event)
    return TaskVisibility.of(principal).allows(data.get("assignee_id"), data.get("creator_id"))
