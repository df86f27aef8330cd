"""Every query on tasks, with the visibility rule applied."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import Row, Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    Condition,
    Derived,
    Filter,
    Filtered,
    IsoDateTime,
    LinkIdFilter,
    LinkKindFilter,
    PageParams,
    Repository,
    Sorts,
    contains_text,
    eq,
    json_list_contains,
    utcnow,
    where_all,
)
from crm2_tasks.errors import TaskNotFound
from crm2_tasks.models import NO_DUE, Series, Task
from crm2_tasks.schemas.tasks import Priority, Status, Tag
from crm2_tasks.visibility import TaskVisibility, assigned_or_created

TASK_SORTS = Sorts(
    {
        "due": col(Task.due_key),
        "created_at": col(Task.created_at),
        "updated_at": col(Task.updated_at),
        "title": col(Task.title),
    },
    id_column=col(Task.id),
    default="due",
)


_PARTIES = (col(Task.assignee_id), col(Task.creator_id))


class TaskRepository(Repository[Task]):
    """The kit's repository with tasks' own rule: visible to assignee and creator."""

    def rule(self, visibility: Any) -> Condition | None:
        """``TaskVisibility.where`` as a condition: part of a list's shape."""
        user = visibility.user_id
        return None if user is None else Condition(assigned_or_created, _PARTIES, user)

    def visible(self, visibility: Any) -> Select[Any]:
        return where_all(self.base(), self.rule(visibility))

    def visible_rows(self, visibility: Any) -> Select[Any]:
        return where_all(self.base(columns=True), self.rule(visibility))

    def filtered(self, visibility: Any, *clauses: Any) -> Filtered:
        """The kit's ``filtered`` with this rule: built once per shape like any list."""
        given = tuple(c for c in (self.rule(visibility), *clauses) if c is not None)
        return Filtered(self.base(columns=True), given)


TASKS = TaskRepository(Task, TaskNotFound, sorts=TASK_SORTS, noun="task")


@dataclass(frozen=True)
class TaskFilters:
    """The list's (and export's) query parameters, declared once (``query_filters``)."""

    assignee: Annotated[uuid.UUID | None, Filter("assignee's user id")] = None
    unassigned: bool = False
    creator: uuid.UUID | None = None
    statuses: Annotated[tuple[Status, ...], Filter("repeat for several", name="status")] = ()
    is_open: Annotated[bool | None, Filter("todo, in_progress or waiting", name="open")] = None
    priority: Priority | None = None
    due_from: IsoDateTime | None = None
    due_to: IsoDateTime | None = None
    overdue: Annotated[bool, Filter("open and due before now")] = False
    link_kind: LinkKindFilter = None
    link_id: LinkIdFilter = None
    tag: Tag | None = None
    q: Annotated[str | None, Filter("in title and description", max_length=200)] = None
    # Open and due before this instant: ``overdue`` read on the tasks clock, or a view's.
    overdue_at: Annotated[datetime | None, Derived] = None


def _due_from(columns: tuple[Any, ...], moment: Any) -> Any:
    """Due at or after ``moment``: ``due_key`` (the indexed sort key) without the tasks that
    have no due time, whose key is ``NO_DUE``."""
    (due_key,) = columns
    return (due_key >= moment) & (due_key < NO_DUE)


def _due_to(columns: tuple[Any, ...], moment: Any) -> Any:
    """Due at or before ``moment``; a task without a due time never is."""
    (due_key,) = columns
    return (due_key <= moment) & (due_key < NO_DUE)


def _open_and_due_before(columns: tuple[Any, ...], moment: Any) -> Any:
    is_open, due_key = columns
    return is_open.is_(True) & (due_key < moment)


def task_select(session: AsyncSession, visibility: TaskVisibility, f: TaskFilters) -> Filtered:
    return TASKS.filtered(
        visibility,
        eq(col(Task.assignee_id), f.assignee),
        col(Task.assignee_id).is_(None) if f.unassigned else None,
        eq(col(Task.creator_id), f.creator),
        col(Task.status).in_(f.statuses) if f.statuses else None,
        eq(col(Task.is_open), f.is_open),
        eq(col(Task.priority), f.priority),
        Condition(_due_from, (col(Task.due_key),), f.due_from) if f.due_from else None,
        Condition(_due_to, (col(Task.due_key),), f.due_to) if f.due_to else None,
        Condition(_open_and_due_before, (col(Task.is_open), col(Task.due_key)), f.overdue_at)
        if f.overdue_at
        else None,
        eq(col(Task.link_kind), f.link_kind),
        eq(col(Task.link_id), f.link_id),
        json_list_contains(session, col(Task.tags), f.tag),
        contains_text(f.q, col(Task.search_text)),
    )


async def list_tasks(
    session: AsyncSession,
    visibility: TaskVisibility,
    filters: TaskFilters,
    sort: str,
    page: PageParams,
) -> tuple[list[Row[Any]], str | None]:
    """A page of tasks as plain rows (shown by the lists and views, written by the export)."""
    stmt = task_select(session, visibility, filters)
    return await TASKS.page_rows(session, stmt, page, sort=sort)


async def get_task(
    session: AsyncSession, visibility: TaskVisibility, task_id: uuid.UUID
) -> Task | None:
    return await TASKS.get(session, visibility, task_id)  # type: ignore[arg-type]


async def add(session: AsyncSession, row: Any) -> Any:
    session.add(row)
    await session.flush()
    return row


async def update_task(
    session: AsyncSession, task: Task, values: Mapping[str, Any], expected_version: int
) -> None:
    """One versioned write (412 when someone else wrote first); ``task`` is refreshed."""
    await TASKS.update(session, task, values, expected_version=expected_version, only_changed=False)


# what a deleted task's ``tasks.task.deleted`` carries, read by the DELETE itself
DELETED_FIELDS = ("id", "title", "assignee_id", "creator_id", "status", "series_id")


def _deleted_columns() -> list[Any]:
    return [col(getattr(Task, name)) for name in DELETED_FIELDS]


async def delete_task(
    session: AsyncSession, task_id: uuid.UUID, version: int | None = None
) -> Row[Any] | None:
    """Delete the task (only at ``version`` when one is given); its fields as deleted, or
    ``None`` when a concurrent delete went first (that one publishes the event) or, with
    ``version``, the task is at another one."""
    stmt = delete(Task).where(col(Task.id) == task_id)
    if version is not None:
        stmt = stmt.where(col(Task.version) == version)
    return (await session.execute(stmt.returning(*_deleted_columns()))).first()


async def task_exists(session: AsyncSession, task_id: uuid.UUID) -> bool:
    stmt = select(col(Task.id)).where(col(Task.id) == task_id)
    return (await session.execute(stmt)).first() is not None


async def occurrence_exists(session: AsyncSession, series_id: uuid.UUID, at: datetime) -> bool:
    stmt = select(col(Task.id)).where(
        col(Task.series_id) == series_id, col(Task.occurrence_at) == at
    )
    return (await session.execute(stmt)).first() is not None


async def later_occurrence_exists(
    session: AsyncSession, series_id: uuid.UUID, at: datetime
) -> bool:
    """Whether the series has an occurrence after ``at`` (the series went on from there)."""
    stmt = select(col(Task.id)).where(
        col(Task.series_id) == series_id, col(Task.occurrence_at) > at
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def delete_open_occurrences_after(
    session: AsyncSession, series_id: uuid.UUID, at: datetime
) -> list[Row[Any]]:
    """Delete the series' open occurrences after ``at``; the deleted tasks' fields."""
    stmt = (
        delete(Task)
        .where(
            col(Task.series_id) == series_id,
            col(Task.occurrence_at) > at,
            col(Task.is_open).is_(True),
        )
        .returning(*_deleted_columns())
    )
    return list((await session.execute(stmt)).all())


async def get_series(session: AsyncSession, series_id: uuid.UUID) -> Series | None:
    return await session.get(Series, series_id, populate_existing=True)


async def update_series(
    session: AsyncSession, series_id: uuid.UUID, values: Mapping[str, Any]
) -> None:
    await session.execute(
        update(Series)
        .where(col(Series.id) == series_id)
        .values(**values, updated_at=utcnow(), version=col(Series.version) + 1)
    )


async def tasks_for_rule_event(
    session: AsyncSession, rule_id: uuid.UUID, event_id: uuid.UUID
) -> Sequence[uuid.UUID]:
    stmt = select(col(Task.id)).where(
        col(Task.automation_rule_id) == rule_id, col(Task.source_event_id) == event_id
    )
    return list((await session.execute(stmt)).scalars())
