"""Record-level rules: who sees which tasks.

Holders of ``tasks:all_records`` (admin, manager, viewer by default) see every
task (unless a ``crm2_check_permission`` hook denies it them, as it would deny a
route); anyone else sees the tasks assigned to them or created by them. Every
query takes a ``TaskVisibility`` (``TaskVisibility.in_session(session, principal)``)
and applies it in SQL, so get (404), lists, views, the export, the iCalendar feed
and the ``tasks`` stream agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.api import RecordRules, Visibility
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.api import AppContext

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
    def of(cls, principal: Principal | None, context: AppContext) -> TaskVisibility:
        """``context``: the application, whose ``crm2_check_permission`` hooks may deny
        ``tasks:all_records``."""
        return cls(user_id=RULES.visibility(principal, context).owner_id)

    @classmethod
    def in_session(
        cls,
        session: AsyncSession | async_sessionmaker[AsyncSession],
        principal: Principal | None,
    ) -> TaskVisibility:
        """:meth:`of` with the hooks of the application whose session (or factory) it is."""
        return cls(user_id=RULES.in_session(session, principal).owner_id)

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


@dataclass(frozen=True)
class TaskRules(RecordRules):
    """The kit's rule (``all_records`` as the hooks allow it) on a task's two people: the
    ``tasks`` stream evaluates it once per audience, as it does the other plugins'."""

    def stream_sees(self, audience: Visibility, event: Any) -> bool:
        data = _data(event)
        return TaskVisibility(audience.owner_id).allows(
            data.get("assignee_id"), data.get("creator_id")
        )


RULES = TaskRules(ALL_RECORDS)
# The ``tasks`` stream's rule: every tasks event carries assignee and creator.
can_see = RULES.can_see
