"""The tasks sections of the web console (``crm2_console_views``); rendered by the console."""

from __future__ import annotations

from crm2_hookspecs import ConsoleView


def _tasks_view(
    key: str,
    title: str,
    title_ru: str,
    list_path: str,
    columns: tuple[str, ...],
    order: int,
    filters: tuple[str, ...] = (),
) -> ConsoleView:
    """A list of tasks: created at /tasks, opened and completed at /tasks/{id}."""
    return ConsoleView(
        key=key,
        title=title,
        titles={"ru": title_ru},
        list_path=list_path,
        item_path="/api/v1/tasks/tasks/{id}",
        permission="tasks:read",
        write_permission="tasks:write",
        item_schema="TaskPublic",
        create_schema="TaskCreate",
        update_schema="TaskUpdate",
        create_path="/api/v1/tasks/tasks",
        columns=columns,
        filters=filters,
        form=("title", "description", "due_at", "priority"),
        edit=("title", "description", "due_at", "priority", "status"),
        actions=("complete",),
        stream="tasks",
        order=order,
    )


VIEWS = (
    _tasks_view(
        "tasks.mine",
        "My tasks",
        "Мои задачи",
        "/api/v1/tasks/views/mine",
        ("title", "status", "priority", "due_at", "overdue"),
        60,
    ),
    _tasks_view(
        "tasks.overdue",
        "Overdue",
        "Просроченные",
        "/api/v1/tasks/views/overdue",
        ("title", "status", "priority", "due_at", "assignee_id"),
        61,
    ),
    _tasks_view(
        "tasks.all",
        "All tasks",
        "Все задачи",  # noqa: RUF001  (Russian, not look-alike Latin)
        "/api/v1/tasks/tasks",
        ("title", "status", "priority", "due_at", "assignee_id", "tags"),
        62,
        filters=("q", "status", "priority", "tag"),
    ),
)
