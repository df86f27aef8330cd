"""A time zone must name a place: not the host's own zone, a template or a placeholder."""

from __future__ import annotations

import pytest
from crm2_tasks.config import TasksSettings
from pydantic import ValidationError
from tasks_kit import API, Tasks

START = "2026-03-23T09:00:00+01:00"
# in the tz database's folder but no place: the host's own zone, a template, a placeholder
NOT_PLACES = ["localtime", "posixrules", "Factory"]


@pytest.mark.parametrize("name", NOT_PLACES)
async def test_a_series_in_a_zone_that_names_no_place_is_422(tasks: Tasks, name: str) -> None:
    agent = await tasks.user("agent")
    body = {"title": "x", "due_at": START, "recurrence": "FREQ=WEEKLY", "timezone": name}
    response = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ["body", "timezone"] in [e["loc"] for e in response.json()["errors"]]
    listed = await tasks.client.get(f"{API}/tasks", headers=agent.headers)
    assert listed.json()["items"] == []


@pytest.mark.parametrize("name", NOT_PLACES)
async def test_a_calendar_in_a_zone_that_names_no_place_is_422(tasks: Tasks, name: str) -> None:
    admin = await tasks.user("admin")
    body = {"name": "office", "timezone": name, "hours": {"mon": [["09:00", "17:00"]]}}
    response = await tasks.client.post(f"{API}/calendars", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert ["body", "timezone"] in [e["loc"] for e in response.json()["errors"]]


@pytest.mark.parametrize("name", NOT_PLACES)
def test_the_default_zone_setting_must_name_a_place(name: str) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        TasksSettings(timezone=name)


async def test_places_and_utc_are_still_zones(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    for name in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"):
        body = {"title": "x", "due_at": START, "recurrence": "FREQ=WEEKLY", "timezone": name}
        response = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
        assert response.status_code == 201, (name, response.text)
