"""`/api/v1/tasks/tasks` routes: CRUD, status verbs, views, SLA timers and the CSV export."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response, status
from sqlalchemy import Row

from crm2_core.api import (
    APIRouter,
    AppContext,
    ContextDep,
    IfMatchDep,
    ListQuery,
    OptionalIfMatch,
    Page,
    PageDep,
    SessionDep,
    acting_user,
    created,
    export_route,
    list_query,
    page_response,
    present,
    query_filters,
)
from crm2_tasks import clock
from crm2_tasks.calendar import zone
from crm2_tasks.repository import tasks as repo
from crm2_tasks.repository import timers as timers_repo
from crm2_tasks.routes.deps import TasksDelete, TasksRead, TasksWrite
from crm2_tasks.schemas.tasks import (
    SlaTimerPublic,
    TaskAssign,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
)
from crm2_tasks.service import tasks as service
from crm2_tasks.visibility import TaskVisibility

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


def _overdue_at(filters: repo.TaskFilters, context: AppContext) -> repo.TaskFilters:
    return replace(filters, overdue_at=clock.now(context)) if filters.overdue else filters


task_filters = query_filters(repo.TaskFilters, params={"context": ContextDep}, finish=_overdue_at)
task_query = list_query(
    repo.TaskFilters, repo.TASK_SORTS, params={"context": ContextDep}, finish=_overdue_at
)
TaskListQuery = Annotated[ListQuery[repo.TaskFilters], Depends(task_query)]


def _page(rows: list[Row[Any]], cursor: str | None, now: datetime) -> Response:
    return page_response(TaskPublic, [service.public_values(t, now) for t in rows], cursor)


@router.get("/tasks", response_model=Page[TaskPublic])
async def list_tasks(
    principal: TasksRead,
    session: SessionDep,
    context: ContextDep,
    query: TaskListQuery,
) -> Response:
    """Tasks the caller may see (assigned to or created by them, or all with tasks:all_records)."""
    visibility = TaskVisibility.in_session(session, principal)
    rows, cursor = await repo.list_tasks(session, visibility, query.filters, query.sort, query.page)
    return _page(rows, cursor, clock.now(context))


@router.post("/tasks", response_model=TaskPublic, status_code=status.HTTP_201_CREATED)
async def create_task(
    body: TaskCreate,
    principal: TasksWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> TaskPublic:
    """Create a task (assigned to the caller unless given); honours Idempotency-Key."""
    task = await service.create_task(session, context, principal, body)
    return created(
        response, f"/api/v1/tasks/tasks/{task.id}", service.public(task, clock.now(context))
    )


View = Literal["mine", "overdue", "due-today"]


@router.get("/views/{view}", response_model=Page[TaskPublic])
async def task_view(
    view: View,
    principal: TasksRead,
    session: SessionDep,
    context: ContextDep,
    page: PageDep,
) -> Response:
    """Views: "mine" (my open tasks by due date), "overdue" (open and past due), "due-today"
    (open and due before the end of today in CRM2_TASKS_TIMEZONE, overdue ones first)."""
    now = clock.now(context)
    if view == "mine":
        filters = repo.TaskFilters(assignee=acting_user(principal), is_open=True)
    elif view == "overdue":
        filters = repo.TaskFilters(overdue_at=now)
    else:
        tz = zone(context.plugin_settings("tasks").timezone)
        local = now.astimezone(tz)
        end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        filters = repo.TaskFilters(is_open=True, due_to=end - timedelta(microseconds=1))
    rows, cursor = await repo.list_tasks(
        session, TaskVisibility.in_session(session, principal), filters, "due", page
    )
    return _page(rows, cursor, now)


export_route(
    router, "/tasks/export", permission="tasks:export", filters=task_filters,
    sorts=repo.TASK_SORTS, export=service.export_tasks, columns=service.EXPORT_COLUMNS,
    filename="tasks",
    doc="The task list as CSV (same filters and visibility as the list), streamed.",
)  # fmt: skip


@router.get("/tasks/{task_id}", response_model=TaskPublic)
async def get_task(
    task_id: uuid.UUID,
    principal: TasksRead,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> TaskPublic:
    """One task; its ETag is what a PATCH sends as If-Match."""
    task = await service.get_task(session, TaskVisibility.in_session(session, principal), task_id)
    return present(response, service.public(task, clock.now(context)))


@router.patch("/tasks/{task_id}", response_model=TaskPublic)
async def update_task(
    task_id: uuid.UUID,
    body: TaskUpdate,
    if_match: IfMatchDep,
    principal: TasksWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> TaskPublic:
    """Change fields (If-Match required); on a recurring task scope=this|following."""
    task = await service.update_task(session, context, principal, task_id, if_match, body)
    return present(response, service.public(task, clock.now(context)))


DeleteScope = Annotated[
    Literal["this", "following"],
    Query(
        description="on a recurring task: this (skip this occurrence, the series goes on) "
        "or following (end the series here)"
    ),
]


@router.delete("/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(
    task_id: uuid.UUID,
    principal: TasksDelete,
    session: SessionDep,
    context: ContextDep,
    scope: DeleteScope = "this",
    if_match: OptionalIfMatch = None,
) -> Response:
    """Delete a task with its reminders and SLA timers; scope=following ends its series."""
    await service.delete_task(session, context, principal, task_id, scope, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tasks/{task_id}/complete", response_model=TaskPublic)
async def complete_task(
    task_id: uuid.UUID,
    principal: TasksWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> TaskPublic:
    """Mark done; a recurring task's next occurrence is created (Link header: rel=next)."""
    task, next_id = await service.complete_task(session, context, principal, task_id, if_match)
    if next_id is not None:
        response.headers["Link"] = f'</api/v1/tasks/tasks/{next_id}>; rel="next"'
    return present(response, service.public(task, clock.now(context)))


@router.post("/tasks/{task_id}/reopen", response_model=TaskPublic)
async def reopen_task(
    task_id: uuid.UUID,
    principal: TasksWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> TaskPublic:
    """A done or cancelled task back to todo; its SLA clock runs on."""
    task = await service.reopen_task(session, context, principal, task_id, if_match)
    return present(response, service.public(task, clock.now(context)))


@router.post("/tasks/{task_id}/assign", response_model=TaskPublic)
async def assign_task(
    task_id: uuid.UUID,
    body: TaskAssign,
    principal: TasksWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> TaskPublic:
    """Give the task to another active user (null: unassigned)."""
    task = await service.assign_task(session, principal, task_id, if_match, body)
    return present(response, service.public(task, clock.now(context)))


@router.get("/tasks/{task_id}/sla", response_model=list[SlaTimerPublic])
async def task_sla(
    task_id: uuid.UUID, principal: TasksRead, session: SessionDep
) -> list[SlaTimerPublic]:
    """The task's SLA timers (response, resolution) with their deadlines."""
    task = await service.get_task(session, TaskVisibility.in_session(session, principal), task_id)
    timers = await timers_repo.timers_of(session, task.id)
    return [SlaTimerPublic.model_validate(t) for t in timers]
