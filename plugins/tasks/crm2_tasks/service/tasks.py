"""Tasks: create, edit, assign, complete and reopen; recurrence; links; emits task events.

Services take the principal and decide; they never commit (the request or the
worker message does, with the events in the outbox).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.api import (
    CsvColumns,
    EntityLink,
    PreconditionFailed,
    acting_user,
    check_version,
    credential_permitted,
    export_list,
    insert_together,
    new_row,
    publish,
    publish_row,
    require_entity,
    resolve_entity,
)
from crm2_hookspecs import Principal
from crm2_tasks import clock, recurrence
from crm2_tasks.calendar import zone_problems
from crm2_tasks.errors import (
    EditConflict,
    InvalidLink,
    InvalidRecurrence,
    InvalidTransition,
    TaskNotFound,
)
from crm2_tasks.events import (
    TaskAssigned,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskReopened,
    TaskUpdated,
)
from crm2_tasks.extensions import vet
from crm2_tasks.hookspecs import TaskChange
from crm2_tasks.models import NO_DUE, OPEN_STATUSES, Series, Task
from crm2_tasks.recurrence import RecurrenceError, validate
from crm2_tasks.repository import tasks as repo
from crm2_tasks.schemas.tasks import (
    LATEST_DUE,
    TaskAssign,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
)
from crm2_tasks.service import assignees, reminders, sla
from crm2_tasks.visibility import TaskVisibility

CLOSED = ("done", "cancelled")
# the fields a series' template carries to its next occurrences
TEMPLATE_FIELDS = ("title", "description", "priority", "tags", "checklist", "reminders")
ROW_FIELDS = (
    *(name for name in TaskPublic.model_fields if name not in ("link", "overdue")),
    "link_kind",
    "link_id",
    "is_open",
)


_NO_STATE: dict[str, Any] = {}
logger = logging.getLogger(__name__)


def public(task: Task | Row[Any], now: datetime) -> TaskPublic:
    """The response body of a task (or of a list page's plain row), from its loaded values;
    ``overdue`` as of ``now``, the tasks clock (``clock.now``), as the lists filter it."""
    return TaskPublic.model_validate(public_values(task, now))


def public_values(task: Task | Row[Any], now: datetime) -> dict[str, Any]:
    """``public``'s fields, unvalidated: a list page validates its fifty at once
    (``page_response``), without a model built per row and then read again.

    Reading the instance's ``__dict__`` instead of ``model_dump()`` makes this 2.5x
    cheaper (bench 10); a plain row (``Repository.page_rows``) has no ``__dict__``
    and is read by attribute.
    """
    state = getattr(task, "__dict__", _NO_STATE)
    fields = {name: state[name] if name in state else getattr(task, name) for name in ROW_FIELDS}
    kind = fields["link_kind"]
    fields["link"] = {"kind": kind, "id": fields["link_id"]} if kind else None
    due = fields["due_at"]
    fields["overdue"] = bool(fields["is_open"] and due is not None and due < now)
    return fields


def _identity(task: Task) -> dict[str, Any]:
    return {"title": task.title, "assignee_id": task.assignee_id, "creator_id": task.creator_id}


def _search_text(title: str, description: str) -> str:
    return f"{title}\n{description}".lower()


async def get_task(session: AsyncSession, visibility: TaskVisibility, task_id: uuid.UUID) -> Task:
    task = await repo.get_task(session, visibility, task_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id}")
    return task


async def check_assignee(session: AsyncSession, assignee: uuid.UUID | None) -> None:
    """Any active user whose roles grant ``tasks:read`` may be given a task (the creator
    keeps seeing it); anyone else is a 422 (``service.assignees``)."""
    await assignees.check(session, assignee)


async def check_link(
    session: AsyncSession, context: Any, principal: Principal | None, link: EntityLink
) -> None:
    """The linked record must exist and be visible to the caller (``crm2_resolve_entity``),
    read in the request's session."""
    await require_entity(context, link, principal, session)


def _timezone(context: Any, requested: str | None) -> str:
    return requested or context.plugin_settings("tasks").timezone


async def new_task(
    session: AsyncSession,
    context: Any,
    *,
    actor: Principal | None,
    values: dict[str, Any],
    now: datetime | None = None,
    link_dropped: dict[str, str] | None = None,
) -> Task:
    """Insert a task with its reminders and SLA timers and publish ``tasks.task.created``.

    The one way in for users, automation rules, recurring series and seeds;
    ``link_dropped`` is the series' link an occurrence was made without, and why.
    """
    now = now or clock.now(context)
    row = new_row(Task, **values)
    fields = row.values
    fields["is_open"] = fields["status"] in OPEN_STATUSES
    fields["due_key"] = fields["due_at"] or NO_DUE
    fields["search_text"] = _search_text(fields["title"], fields["description"])
    task = Task.model_construct(**fields)  # the task as written
    timers = await sla.first_timers(session, context, task, now)  # reads only
    created = TaskCreated(
        status=task.status,
        priority=task.priority,
        due_at=task.due_at,
        link_kind=task.link_kind,
        link_id=task.link_id,
        series_id=task.series_id,
        automation_rule_id=task.automation_rule_id,
        link_dropped=link_dropped,
        **_identity(task),
    )
    record = publish_row(session, created, subject=task.id, actor=actor)
    # the task, its reminders, its SLA timers and its event: one statement (one round
    # trip, held to the commit when nothing was written before it)
    await insert_together(session, [row, *reminders.first_reminders(task, now), *timers, record])
    return task


def _template(task_values: dict[str, Any]) -> dict[str, Any]:
    template = {k: task_values[k] for k in TEMPLATE_FIELDS if k in task_values}
    template["checklist"] = [
        {"text": item["text"], "done": False} for item in template.get("checklist", [])
    ]
    for key in ("assignee_id", "creator_id"):
        value = task_values.get(key)
        template[key] = str(value) if value is not None else None
    template["link_kind"] = task_values.get("link_kind")
    template["link_id"] = task_values.get("link_id")
    return template


async def create_task(
    session: AsyncSession, context: Any, principal: Principal, data: TaskCreate
) -> Task:
    if data.link is not None:
        await check_link(session, context, principal, data.link)
    me = acting_user(principal)
    assignee = data.assignee_id or me
    await check_assignee(session, assignee)
    values: dict[str, Any] = {
        "title": data.title,
        "description": data.description,
        "status": data.status,
        "priority": data.priority,
        "assignee_id": assignee,
        "creator_id": me,
        "due_at": data.due_at,
        "tags": list(data.tags),
        "checklist": [item.model_dump() for item in data.checklist],
        "reminders": list(data.reminders),
        "link_kind": data.link.kind if data.link else None,
        "link_id": str(data.link.id) if data.link else None,
    }
    if data.recurrence is not None:
        if data.due_at is None:
            raise InvalidRecurrence("a recurring task needs due_at: the first occurrence")
        timezone = _timezone(context, data.timezone)
        series = _series(data.recurrence, data.due_at, timezone)
        row = Series(
            rule=series.rule, timezone=timezone, start_at=data.due_at, template=_template(values)
        )
        await repo.add(session, row)
        values.update(series_id=row.id, occurrence_at=data.due_at)
    sent = data.model_dump(mode="json", exclude_unset=True)
    await vet(context, session, principal, TaskChange("create", None, {}, sent, tuple(sent)))
    return await new_task(session, context, actor=principal, values=values)


def _series(rule: str, start: datetime, timezone: str) -> Any:
    try:
        return validate(rule, start, timezone)
    except RecurrenceError as exc:
        raise InvalidRecurrence(str(exc)) from exc


# -- edits ----------------------------------------------------------------------------


def _same_link(task: Task, link: EntityLink) -> bool:
    return (link.kind, str(link.id)) == (task.link_kind, task.link_id)


def _changes(task: Task, data: TaskUpdate) -> dict[str, Any]:
    sent = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    for field in ("title", "description", "priority", "status", "tags", "reminders", "due_at"):
        if field in sent and sent[field] != getattr(task, field):
            values[field] = sent[field]
    if data.checklist is not None:
        checklist = [item.model_dump() for item in data.checklist]
        if checklist != task.checklist:
            values["checklist"] = checklist
    if data.unlink and task.link_kind is not None:
        values.update(link_kind=None, link_id=None)
    elif data.link is not None and not _same_link(task, data.link):
        values.update(link_kind=data.link.kind, link_id=str(data.link.id))
    return values


async def update_task(
    session: AsyncSession,
    context: Any,
    principal: Principal,
    task_id: uuid.UUID,
    if_match: str,
    data: TaskUpdate,
) -> Task:
    """Change fields; on a recurring task ``scope=following`` also changes the series."""
    # the task's visibility first: a 422 about the link would tell a stranger it exists
    task = await get_task(session, TaskVisibility.in_session(session, principal), task_id)
    if data.link is not None and not data.unlink and not _same_link(task, data.link):
        # the link the task has is not checked again: the editor may have lost sight of
        # the record since, and a client sends back the task as it read it
        await check_link(session, context, principal, data.link)
    version = check_version(if_match, task.version)
    if not task.is_open:
        raise InvalidTransition(f"the task is {task.status}: reopen it first")
    before = public(task, clock.now(context)).model_dump(mode="json")
    sent = data.model_dump(mode="json", exclude_unset=True)
    change = TaskChange("update", task.id, before, {**before, **sent}, tuple(sent))
    await vet(context, session, principal, change)
    if data.recurrence is not None and data.scope != "following":
        raise InvalidRecurrence("change the recurrence with scope=following")
    if data.link is not None and data.unlink:
        raise InvalidLink("send link or unlink, not both")
    values = _changes(task, data)
    if data.scope == "following":
        await _change_series(session, context, task, data, values)
    return await _apply(session, context, principal, task, version, values)


async def _apply(
    session: AsyncSession,
    context: Any,
    principal: Principal | None,
    task: Task,
    version: int,
    values: dict[str, Any],
    *,
    next_task_id: uuid.UUID | None = None,
) -> Task:
    """Write ``values`` (one version bump) and everything a change implies."""
    now = clock.now(context)
    old_status = task.status
    new_status = values.get("status", old_status)
    if new_status == "done" and old_status != "done":
        raise InvalidTransition("complete a task with POST …/complete")
    if old_status in CLOSED and new_status in CLOSED and new_status != old_status:
        raise InvalidTransition(f"the task is {old_status}: reopen it first")
    if "title" in values or "description" in values:
        values["search_text"] = _search_text(
            values.get("title", task.title), values.get("description", task.description)
        )
    if "due_at" in values:
        values["due_key"] = values["due_at"] or NO_DUE
    if new_status != old_status:
        values["is_open"] = new_status in OPEN_STATUSES
    if not values:
        return task
    await repo.update_task(session, task, values, version)
    if {"due_at", "reminders", "status"} & values.keys():
        await reminders.arm(session, task, now)
    if new_status != old_status:
        await sla.on_status(session, context, task, old_status, new_status, now)
    if {"priority", "tags"} & values.keys() and task.is_open:
        await sla.on_classification(session, context, task, now)
    changed = sorted(k for k in values if k not in ("search_text", "due_key", "is_open"))
    publish(
        session, TaskUpdated(changed=changed, **_identity(task)), subject=task.id, actor=principal
    )
    if new_status == "cancelled" and old_status != "cancelled":
        await _advance_series(session, context, task)
    return task


async def _change_series(
    session: AsyncSession, context: Any, task: Task, data: TaskUpdate, values: dict[str, Any]
) -> None:
    """ "This and following": the task starts a series of its own (RFC 5545 THISANDFUTURE)."""
    timezone = context.plugin_settings("tasks").timezone
    series = await repo.get_series(session, task.series_id) if task.series_id else None
    occurrence = task.occurrence_at or task.due_at
    if series is None and data.recurrence is None:
        raise InvalidRecurrence("the task does not repeat: send recurrence to make it")
    start = values.get("due_at", occurrence)
    if start is None:
        raise InvalidRecurrence("a recurring task needs due_at")
    if series is None:
        assert data.recurrence is not None  # refused above
        rule = _series(data.recurrence, start, timezone).rule
    else:
        for problem in zone_problems(series.timezone):
            # stored before such zones were refused: splitting it would store a new series in
            # it, and no request can name the place meant (there is no timezone to PATCH)
            raise InvalidRecurrence(
                f"the series' {problem}; end it (DELETE …?scope=following) and create it again"
            )
        timezone = series.timezone
        current = recurrence.Series(series.rule, series.start_at, series.timezone)
        rule = data.recurrence or current.remaining_rule(occurrence or start)
        rule = _series(rule, start, timezone).rule
    merged = {**task.model_dump(), **values}
    template = _template(merged)
    if series is not None and series.start_at == occurrence:
        if start != occurrence and await repo.occurrence_exists(session, series.id, start):
            raise InvalidRecurrence(
                f"the series already has its occurrence at {start.isoformat()}: "
                "change that one, or move this one elsewhere"
            )
        await repo.update_series(
            session, series.id, {"rule": rule, "start_at": start, "template": template}
        )
        values["occurrence_at"] = start
        return
    if series is not None:
        ended = recurrence.Series(series.rule, series.start_at, series.timezone).ended_before(
            occurrence or start
        )
        await repo.update_series(session, series.id, {"rule": ended})
    row = Series(rule=rule, timezone=timezone, start_at=start, template=template)
    await repo.add(session, row)
    values.update(series_id=row.id, occurrence_at=start)


async def _advance_series(session: AsyncSession, context: Any, task: Task) -> uuid.UUID | None:
    """Create the series' next occurrence after this one (once: one task per occurrence)."""
    if task.series_id is None or task.occurrence_at is None:
        return None
    series = await repo.get_series(session, task.series_id)
    if series is None:
        return None
    upcoming = recurrence.Series(series.rule, series.start_at, series.timezone).next_after(
        task.occurrence_at, before=LATEST_DUE
    )
    if upcoming is None:
        return None  # the series ended, or ends with due_at's last year (2999)
    if await repo.later_occurrence_exists(session, series.id, task.occurrence_at):
        # the series went on from here before (this one was done, and reopened), or from a
        # later occurrence: making the next again would bring back one deleted (skipped)
        return None
    template = dict(series.template)
    values: dict[str, Any] = {k: template[k] for k in TEMPLATE_FIELDS if k in template}
    raw = template.get("creator_id")
    values["creator_id"] = uuid.UUID(raw) if raw else None
    # the occurrence's assignee now, not the series': a reassignment carries on
    values["assignee_id"] = task.assignee_id
    if values["assignee_id"] is not None and await assignees.refusal(
        session, values["assignee_id"]
    ):
        # the assignee left or may no longer read tasks: the next one waits for someone
        values["assignee_id"] = None
    reader = values["assignee_id"] or values["creator_id"]
    link, dropped = await checked_link(
        session, context, template.get("link_kind"), template.get("link_id"), reader
    )
    values.update(
        link_kind=link[0] if link else None,
        link_id=link[1] if link else None,
        due_at=upcoming,
        occurrence_at=upcoming,
        series_id=series.id,
        status="todo",
    )
    created = await new_task(session, context, actor=None, values=values, link_dropped=dropped)
    return created.id


async def checked_link(
    session: AsyncSession,
    context: Any,
    kind: str | None,
    ident: str | None,
    reader: uuid.UUID | None,
) -> tuple[tuple[str, str] | None, dict[str, str] | None]:
    """The link of a task made without a caller (a series' new occurrence, an automation
    rule's task), checked now as a caller's is at creation: the record must exist and be
    visible to the task's assignee (its creator when unassigned), as their roles are now.
    Otherwise the task is made without the link and the link is given back with the
    reason, for ``tasks.task.created``; a series keeps it, so a later occurrence whose
    assignee may see the record has it again.
    """
    if not kind or not ident:
        return None, None
    principal = None  # nobody to show it to: the record only has to exist
    if reader is not None:
        principal = await credential_permitted(context, session, "user", reader, "tasks:read")
    found = None
    if reader is None or principal is not None:
        found = await resolve_entity(context, kind, ident, principal, session)
    if found is not None:
        return (kind, ident), None
    # one reason for a record gone and one hidden: the assignee must not learn which
    logger.info("tasks: a task made for a series or a rule dropped its link %s %s", kind, ident)
    return None, {"kind": kind, "id": ident, "reason": "gone_or_not_visible"}


# -- status verbs ---------------------------------------------------------------------

# An unconditional verb (no If-Match) that loses the race with an edit reads the task again
# and decides afresh; after this many lost races in a row it gives up with a 409.
UNCONDITIONAL_ATTEMPTS = 3

Decide = Callable[[Task], Awaitable[dict[str, Any] | None]]


async def _write_verb(
    session: AsyncSession,
    principal: Principal,
    task_id: uuid.UUID,
    if_match: str | None,
    decide: Decide,
) -> tuple[Task, bool]:
    """Read the task, let ``decide`` check it and name the values to write (``None``:
    nothing to do), and write them with one version bump; ``True`` when written.

    With If-Match the write is conditional: another version than the one sent is 412, also
    when an edit commits between this read and this write. Without If-Match the client
    asked for the change on the task as it is, so a racing edit is no failed precondition:
    the task is read again and the change decided afresh (a racing completion then makes
    "complete" a 409 ``tasks-invalid-transition``), and only a task that keeps changing
    under the request answers 409 ``tasks-edit-conflict``.
    """
    visibility = TaskVisibility.in_session(session, principal)
    for _ in range(UNCONDITIONAL_ATTEMPTS):
        task = await get_task(session, visibility, task_id)
        version = check_version(if_match, task.version) if if_match else task.version
        values = await decide(task)
        if values is None:
            return task, False
        try:
            await repo.update_task(session, task, values, version)
        except PreconditionFailed:
            if if_match is not None:
                raise
            continue  # the failed UPDATE wrote nothing: read the task as it is now
        return task, True
    raise EditConflict(f"task {task_id} kept changing; read it and try again")


async def complete_task(
    session: AsyncSession,
    context: Any,
    principal: Principal,
    task_id: uuid.UUID,
    if_match: str | None,
) -> tuple[Task, uuid.UUID | None]:
    """Done; a recurring task's next occurrence is created in the same transaction."""
    now = clock.now(context)
    old = ""

    async def decide(task: Task) -> dict[str, Any]:
        nonlocal old
        if not task.is_open:
            raise InvalidTransition(f"the task is already {task.status}")
        old = task.status
        return {"status": "done", "is_open": False, "completed_at": now}

    task, _ = await _write_verb(session, principal, task_id, if_match, decide)
    await reminders.arm(session, task, now)
    await sla.on_status(session, context, task, old, "done", now)
    next_id = await _advance_series(session, context, task)
    completed = TaskCompleted(completed_at=now, next_task_id=next_id, **_identity(task))
    publish(session, completed, subject=task.id, actor=principal)
    return task, next_id


async def reopen_task(
    session: AsyncSession,
    context: Any,
    principal: Principal,
    task_id: uuid.UUID,
    if_match: str | None,
) -> Task:
    now = clock.now(context)
    old = ""

    async def decide(task: Task) -> dict[str, Any]:
        nonlocal old
        if task.is_open:
            raise InvalidTransition(f"the task is {task.status}, not done or cancelled")
        old = task.status
        return {"status": "todo", "is_open": True, "completed_at": None}

    task, _ = await _write_verb(session, principal, task_id, if_match, decide)
    await reminders.arm(session, task, now)
    await sla.on_status(session, context, task, old, "todo", now)
    publish(
        session, TaskReopened(status="todo", **_identity(task)), subject=task.id, actor=principal
    )
    return task


async def assign_task(
    session: AsyncSession,
    principal: Principal,
    task_id: uuid.UUID,
    if_match: str | None,
    data: TaskAssign,
) -> Task:
    previous: uuid.UUID | None = None
    checked = False

    async def decide(task: Task) -> dict[str, Any] | None:
        nonlocal previous, checked
        if data.assignee_id == task.assignee_id:
            return None
        if not checked:
            await check_assignee(session, data.assignee_id)
            checked = True
        previous = task.assignee_id
        return {"assignee_id": data.assignee_id}

    task, written = await _write_verb(session, principal, task_id, if_match, decide)
    if written:
        event = TaskAssigned(previous_assignee_id=previous, reason="manual", **_identity(task))
        publish(session, event, subject=task.id, actor=principal)
    return task


async def delete_task(
    session: AsyncSession,
    context: Any,
    principal: Principal,
    task_id: uuid.UUID,
    scope: str = "this",
    if_match: str | None = None,
) -> None:
    """Delete a task. An occurrence of a series: ``this`` skips it (the series goes on, its
    next occurrence is made now, as when it is completed or cancelled); ``following`` ends
    the series before it (RFC 5545 UNTIL) and deletes it with the series' later open
    occurrences; done or cancelled ones stay as history.

    With ``if_match`` the delete is conditional, as a PATCH is: another version is 412,
    also when an edit commits between this read and the delete."""
    task = await get_task(session, TaskVisibility.in_session(session, principal), task_id)
    expected = check_version(if_match, task.version) if if_match is not None else None
    deleted = await repo.delete_task(session, task.id, expected)
    if deleted is None:
        if expected is not None and await repo.task_exists(session, task.id):
            raise PreconditionFailed(
                f"task {task_id} changed while you were deleting it; read it again and retry"
            )
        raise TaskNotFound(f"no task {task_id}")  # a concurrent delete went first
    _publish_deleted(session, principal, deleted)
    if task.series_id is None or task.occurrence_at is None:
        return
    if scope == "following":
        series = await repo.get_series(session, task.series_id)
        if series is not None:
            rule = recurrence.Series(series.rule, series.start_at, series.timezone)
            await repo.update_series(
                session, series.id, {"rule": rule.ended_before(task.occurrence_at)}
            )
            later = await repo.delete_open_occurrences_after(session, series.id, task.occurrence_at)
            for row in later:
                _publish_deleted(session, principal, row)
    elif task.is_open:
        # a closed one moved the series on when it closed
        await _advance_series(session, context, task)


def _publish_deleted(session: AsyncSession, principal: Principal, row: Row[Any]) -> None:
    """``tasks.task.deleted`` for one deleted task (its assignee and creator: the streams'
    audience, as the task's other events)."""
    event = TaskDeleted(
        title=row.title,
        assignee_id=row.assignee_id,
        creator_id=row.creator_id,
        status=row.status,
        series_id=row.series_id,
    )
    publish(session, event, subject=row.id, actor=principal)


# -- CSV export ------------------------------------------------------------------------

EXPORT_COLUMNS = CsvColumns(
    (
        "id",
        "title",
        "status",
        "priority",
        "assignee_id",
        "creator_id",
        "due_at",
        "tags",
        "link_kind",
        "link_id",
        "completed_at",
        "created_at",
        "updated_at",
    ),
    version=1,
)


async def _export_rows(session: AsyncSession, items: list[Row[Any]]) -> list[list[object]]:
    return [[getattr(t, name) for name in EXPORT_COLUMNS.names] for t in items]


def export_tasks(
    session_factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    filters: repo.TaskFilters,
    sort: str,
) -> AsyncIterator[str]:
    """The list as CSV chunks (same filters and visibility), one keyset page at a time."""
    visibility = TaskVisibility.in_session(session_factory, principal)
    return export_list(
        session_factory, EXPORT_COLUMNS, repo.list_tasks, visibility, filters, sort, _export_rows
    )
