"""The admin DELETEs (calendars, SLA policies, automation rules) take If-Match as an option,
as a task's DELETE does: sent, another version is 412 and nothing is deleted."""

from __future__ import annotations

from typing import Any

import pytest
from crm2_tasks.models import Calendar
from crm2_tasks.service import calendars
from tasks_kit import (
    API,
    Tasks,
    check_if_match_is_optional_in_openapi,
    check_stale_delete_is_412,
    edited_after_read,
)
from test_tasks_automations import RULE, shop_app

BODIES: dict[str, dict[str, Any]] = {
    "calendars": {
        "name": "Berlin office",
        "timezone": "Europe/Berlin",
        "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    },
    "sla-policies": {"name": "4h", "resolution_minutes": 240},
    "rules": RULE,
}
PATH_IDS = {"calendars": "calendar_id", "sla-policies": "policy_id", "rules": "rule_id"}


async def _made(tasks: Tasks, headers: dict[str, str], kind: str) -> str:
    made = await tasks.client.post(f"{API}/{kind}", json=BODIES[kind], headers=headers)
    assert made.status_code == 201, made.text
    return f"{API}/{kind}/{made.json()['id']}"


@pytest.mark.parametrize("kind", list(BODIES))
async def test_a_stale_if_match_is_412_and_deletes_nothing(
    crm2_app_factory: Any, kind: str
) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin = await tasks.user("admin")
    url = await _made(tasks, admin.headers, kind)
    await check_stale_delete_is_412(tasks, url, admin.headers, {"name": "Renamed"})


@pytest.mark.parametrize("kind", list(BODIES))
async def test_without_if_match_the_delete_still_goes(crm2_app_factory: Any, kind: str) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin = await tasks.user("admin")
    url = await _made(tasks, admin.headers, kind)
    assert (await tasks.client.delete(url, headers=admin.headers)).status_code == 204


async def test_the_admin_deletes_declare_their_optional_if_match_and_412(tasks: Tasks) -> None:
    for kind, id_name in PATH_IDS.items():
        await check_if_match_is_optional_in_openapi(tasks, f"{API}/{kind}/{{{id_name}}}")


async def test_an_edit_committed_after_the_read_makes_a_conditional_delete_412(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await tasks.user("admin")
    url = await _made(tasks, admin.headers, "calendars")
    read = edited_after_read(calendars.get_calendar, Calendar)
    monkeypatch.setattr(calendars, "get_calendar", read)
    raced = await tasks.client.delete(url, headers={**admin.headers, "If-Match": '"v1"'})
    assert raced.status_code == 412, raced.text
    monkeypatch.undo()
    assert (await tasks.client.get(url, headers=admin.headers)).status_code == 200
