"""The hook tasks offers other plugins: veto a task being created or changed.

Listed in the manifest's ``hookspecs``; documented in docs/plugins/hooks.md
("Hooks offered by plugins"). Implement it without depending on tasks with
``@hookimpl(optionalhook=True)``. Versioned like the core's hooks
(docs/plugins/api-policy.md): parameters are added, never renamed or removed
within a major version of crm2-tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from crm2_hookspecs import Crm2Context, Principal, hookspec


@dataclass(frozen=True)
class TaskChange:
    """A change tasks is about to make over REST.

    :param action: ``create`` or ``update``.
    :param task_id: the task's id (``None`` for ``create``).
    :param before: the task as ``GET /tasks/{id}`` shows it (empty for ``create``).
    :param after: the fields sent, over ``before`` (JSON values).
    :param changed: the names of the fields sent.
    """

    action: Literal["create", "update"]
    task_id: uuid.UUID | None
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    changed: tuple[str, ...] = ()


class TasksSpec:
    """Hook specifications of the tasks plugin."""

    @hookspec
    def crm2_tasks_validate_change(
        self, change: TaskChange, session: Any, principal: Principal, context: Crm2Context
    ) -> Awaitable[str | None] | str | None:
        """Veto a task created (``POST /tasks``) or changed (``PATCH /tasks/{id}``).

        Called after tasks' own checks, before anything is written, inside the
        request's transaction (read with ``session``, never commit it). Return a
        reason to refuse: the request answers 422 ``tasks-change-vetoed`` naming
        your plugin and the reason. Return ``None`` to allow.

        :param change: what is about to change.
        :param session: the request's database session (read only).
        :param principal: who asks.
        :param context: the running application.
        :returns: ``None`` to allow, a reason to refuse (or an awaitable of either).
        """
        raise NotImplementedError
