"""A time zone must name a place: not the host's own zone, a template or a placeholder."""

from __future__ import annotations

import uuid

import pytest
from crm2_tasks.config import TasksSettings
from crm2_tasks.models import Calendar, Series
from crm2_tasks.service.zones import warn_unplaced_zones
from pydantic import ValidationError
from sqlalchemy import update
from sqlmodel import col
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


async def test_series_and_calendars_stored_in_such_a_zone_are_flagged_and_logged(
    tasks: Tasks, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored by an older crm2, they keep their zone (no migration knows the place meant by
    the host's ``localtime``): a calendar lists it in ``problems`` and refuses any other change
    until its admin sets a zone, and each start-up logs a warning per calendar and per zone of
    series."""
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    office = {"name": "office", "timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}}
    made = await tasks.client.post(f"{API}/calendars", json=office, headers=admin.headers)
    fine = await tasks.client.post(
        f"{API}/calendars", json={**office, "name": "fine"}, headers=admin.headers
    )
    assert made.json()["problems"] == [] and fine.json()["problems"] == []
    body = {"title": "x", "due_at": START, "recurrence": "FREQ=WEEKLY", "timezone": "UTC"}
    task = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
    series_id = task.json()["series_id"]
    async with tasks.app.context.session_factory() as session:  # saved by an older crm2
        await session.execute(
            update(Calendar)
            .where(col(Calendar.id) == uuid.UUID(made.json()["id"]))
            .values(timezone="localtime")
        )
        await session.execute(
            update(Series).where(col(Series.id) == uuid.UUID(series_id)).values(timezone="Factory")
        )
        await session.commit()
    url = f"{API}/calendars/{made.json()['id']}"
    shown = await tasks.client.get(url, headers=admin.headers)
    (problem,) = shown.json()["problems"]
    assert "'localtime'" in problem and "Europe/Berlin" in problem
    listed = await tasks.client.get(f"{API}/calendars", headers=admin.headers)
    by_name = {c["name"]: c["problems"] for c in listed.json()["items"]}
    assert by_name == {"office": [problem], "fine": []}
    caplog.set_level("WARNING", logger="crm2_tasks")
    assert await warn_unplaced_zones(tasks.app.context) == 2
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("'office'" in m and "'localtime'" in m for m in logged), logged
    assert any(series_id in m and "'Factory'" in m for m in logged), logged
    # another change is refused, naming the zone; setting a zone clears it
    fresh = {**admin.headers, "If-Match": shown.headers["etag"]}
    refused = await tasks.client.patch(url, json={"holidays": ["2026-12-24"]}, headers=fresh)
    assert refused.status_code == 422 and "'localtime'" in refused.json()["detail"]
    assert (await tasks.client.get(url, headers=admin.headers)).json()["holidays"] == []
    fixed = await tasks.client.patch(url, json={"timezone": "Europe/Berlin"}, headers=fresh)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["problems"] == []
    # the series still makes its next occurrence, in the zone it was stored with
    done = await tasks.client.post(
        f"{API}/tasks/{task.json()['id']}/complete", headers=agent.headers
    )
    assert done.status_code == 200, done.text
    next_id = done.headers["link"].split(">")[0].split("/")[-1]
    nxt = (await tasks.get(agent, next_id)).json()
    # this one alone may change; splitting the series would store a new one in that zone
    etag = {**agent.headers, "If-Match": f'"v{nxt["version"]}"'}
    url = f"{API}/tasks/{next_id}"
    split = {"title": "y", "scope": "following"}
    refused = await tasks.client.patch(url, json=split, headers=etag)
    assert refused.status_code == 422 and "'Factory'" in refused.json()["detail"], refused.text
    alone = await tasks.client.patch(url, json={"title": "y"}, headers=etag)
    assert alone.status_code == 200, alone.text
