"""Shared fixtures of the tasks suite: an app with the plugin, signed-in users, helpers.

Test modules import from ``tasks_kit`` (never from ``conftest``: several test
folders have one, and only one of them can be the ``conftest`` module).
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from crm2_tasks.models import AutomationRule
from dateutil import rrule as dateutil_rrule  # type: ignore[import-untyped]
from sqlalchemy import select, update

from crm2_core.testing import Crm2TestApp, EventRecord, SignedInUser

API = "/api/v1/tasks"
_VERSIONS = Path(__file__).parents[1] / "crm2_tasks" / "migrations" / "versions"


def shipped_rules_migration() -> ModuleType:
    """The data migration itself: one source for the shipped automation rules."""
    path = next(_VERSIONS.glob("*_tasks_shipped_automation_rules.py"))
    spec = importlib.util.spec_from_file_location("tasks_shipped_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def seed_shipped_rules(app: Crm2TestApp) -> None:
    """Put the shipped rules back (the test kit empties every table after each test)."""
    data = shipped_rules_migration()
    async with app.context.session_factory() as session:
        for rule in data.SHIPPED_RULES:
            found = await session.execute(
                select(AutomationRule).where(AutomationRule.builtin_key == rule["builtin_key"])
            )
            if found.scalar_one_or_none() is None:
                session.add(AutomationRule(**rule, id=data.IDS[rule["builtin_key"]], enabled=False))
        await session.commit()


User = SignedInUser  # the name every test here imports


class Tasks:
    """The app plus the helpers every tasks test needs."""

    def __init__(self, app: Crm2TestApp) -> None:
        self.app = app
        self.client = app.client

    async def user(self, *roles: str) -> User:
        return await self.app.user(*roles)

    async def create(self, user: User, **fields: Any) -> dict[str, Any]:
        body = {"title": f"Task {uuid.uuid4().hex[:6]}", **fields}
        response = await self.client.post(f"{API}/tasks", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, user: User, task_id: str) -> Any:
        return await self.client.get(f"{API}/tasks/{task_id}", headers=user.headers)

    async def patch(self, user: User, task: dict[str, Any], **fields: Any) -> Any:
        headers = {**user.headers, "If-Match": f'"v{task["version"]}"'}
        return await self.client.patch(f"{API}/tasks/{task['id']}", json=fields, headers=headers)

    async def events(self, type_: str | None = None) -> list[EventRecord]:
        async with self.app.context.session_factory() as session:
            stmt = select(EventRecord).order_by(EventRecord.sequence)
            if type_ is not None:
                stmt = stmt.where(EventRecord.type == type_)
            return list((await session.execute(stmt)).scalars())


@pytest.fixture
async def tasks(crm2_app_factory: Any) -> Tasks:
    """An app with only the core and this plugin; its timers run when a test runs them (the
    scheduler's start-up run would use the real clock, months after the tests' own)."""
    app: Crm2TestApp = await crm2_app_factory(plugins=["tasks"], scheduler_enabled=False)
    await seed_shipped_rules(app)
    return Tasks(app)


# -- conditional DELETE (If-Match as an option), one check for every tasks resource --------


async def check_stale_delete_is_412(
    tasks: Tasks, url: str, headers: dict[str, str], edit: dict[str, Any]
) -> None:
    """Edit the resource at ``url`` (v1, PATCH ``edit``), then: a DELETE with the stale
    If-Match is a 412 problem and deletes nothing; one with the fresh ETag deletes it."""
    edited = await tasks.client.patch(url, json=edit, headers={**headers, "If-Match": '"v1"'})
    assert edited.status_code == 200, edited.text
    stale = await tasks.client.delete(url, headers={**headers, "If-Match": '"v1"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await tasks.client.get(url, headers=headers)).status_code == 200
    fresh = await tasks.client.delete(url, headers={**headers, "If-Match": edited.headers["ETag"]})
    assert fresh.status_code == 204, fresh.text
    assert (await tasks.client.get(url, headers=headers)).status_code == 404


async def check_if_match_is_optional_in_openapi(tasks: Tasks, path: str) -> None:
    """The DELETE of ``path`` (as the spec spells it) declares an optional If-Match and 412."""
    spec = (await tasks.client.get("/openapi.json")).json()
    operation = spec["paths"][path]["delete"]
    (header,) = [p for p in operation["parameters"] if p["name"] == "If-Match"]
    assert header["in"] == "header" and header["required"] is False, path
    assert "412" in operation["responses"], path


def edited_after_read(read: Callable[..., Awaitable[Any]], model: Any) -> Callable[..., Any]:
    """``read`` (``read(session, …, the_id)``) that lets another request's edit land right
    after it: the row's version is bumped in the same session before the caller writes."""

    async def read_then_edited(session: Any, *args: Any) -> Any:
        found = await read(session, *args)
        bump = update(model).where(model.id == args[-1]).values(version=model.version + 1)
        await session.execute(bump.execution_options(synchronize_session=False))
        return found

    return read_then_edited


@pytest.fixture
def periods(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many periods dateutil builds (each one a day, week, month or year it filters)."""
    counted = [0]
    for name in ("ydayset", "mdayset", "wdayset", "ddayset"):
        original = getattr(dateutil_rrule._iterinfo, name)

        def counting(self: Any, *args: Any, _original: Any = original) -> Any:
            counted[0] += 1
            return _original(self, *args)

        monkeypatch.setattr(dateutil_rrule._iterinfo, name, counting)
    yield counted
