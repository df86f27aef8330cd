"""Business calendars over HTTP (admin): checked on save, used by SLA policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm2_tasks.clock import set_clock
from crm2_tasks.jobs import run_timers
from tasks_kit import API, Tasks

BERLIN_OFFICE = {
    "name": "Berlin office",
    "timezone": "Europe/Berlin",
    "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-04-03"],
}


async def test_a_calendar_drives_an_sla_deadline_across_dst_and_a_holiday(tasks: Tasks) -> None:
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    made = await tasks.client.post(f"{API}/calendars", json=BERLIN_OFFICE, headers=admin.headers)
    assert made.status_code == 201, made.text
    policy = {"name": "4h", "resolution_minutes": 240, "calendar_id": made.json()["id"]}
    assert (
        await tasks.client.post(f"{API}/sla-policies", json=policy, headers=admin.headers)
    ).status_code == 201
    thursday_4pm = datetime(2026, 4, 2, 14, 0, tzinfo=UTC)  # 16:00 CEST, Good Friday next
    set_clock(tasks.app.context, lambda: thursday_4pm)
    task = await tasks.create(agent)
    (timer,) = (
        await tasks.client.get(f"{API}/tasks/{task['id']}/sla", headers=agent.headers)
    ).json()
    assert timer["due_at"] == "2026-04-06T10:00:00Z"  # Monday 12:00 CEST: 1 h + 3 h
    in_use = await tasks.client.delete(
        f"{API}/calendars/{made.json()['id']}", headers=admin.headers
    )
    assert in_use.status_code == 409
    late = thursday_4pm + timedelta(days=4)
    assert (await run_timers(tasks.app.context, late))["breaches"] == 1


async def test_unusable_calendars_are_refused(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    bad = [
        {**BERLIN_OFFICE, "timezone": "Mars/Base"},
        {**BERLIN_OFFICE, "timezone": "America"},  # a tzdata folder, not a zone
        {**BERLIN_OFFICE, "hours": {"mon": [["17:00", "09:00"]]}},
        {**BERLIN_OFFICE, "hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}},
        {**BERLIN_OFFICE, "hours": {"funday": [["09:00", "17:00"]]}},
        {**BERLIN_OFFICE, "hours": {}},
        {**BERLIN_OFFICE, "hours": {"mon": [["9am", "5pm"]]}},
        {**BERLIN_OFFICE, "holidays": ["someday"]},
    ]
    for body in bad:
        response = await tasks.client.post(f"{API}/calendars", json=body, headers=admin.headers)
        assert response.status_code == 422, (body, response.text)
    listed = await tasks.client.get(f"{API}/calendars", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_calendar_updates_need_if_match_and_admins(tasks: Tasks) -> None:
    admin, manager = await tasks.user("admin"), await tasks.user("manager")
    made = (
        await tasks.client.post(f"{API}/calendars", json=BERLIN_OFFICE, headers=admin.headers)
    ).json()
    url = f"{API}/calendars/{made['id']}"
    assert (await tasks.client.get(url, headers=manager.headers)).status_code == 403
    assert (
        await tasks.client.patch(url, json={"name": "x"}, headers=admin.headers)
    ).status_code == 428
    headers = {**admin.headers, "If-Match": '"v1"'}
    changed = await tasks.client.patch(url, json={"holidays": ["2026-12-24"]}, headers=headers)
    assert changed.status_code == 200 and changed.json()["holidays"] == ["2026-12-24"]
    assert (await tasks.client.patch(url, json={"name": "y"}, headers=headers)).status_code == 412


async def test_patch_null_is_refused_for_calendars_and_rules(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    made = (
        await tasks.client.post(f"{API}/calendars", json=BERLIN_OFFICE, headers=admin.headers)
    ).json()
    headers = {**admin.headers, "If-Match": '"v1"'}
    for body in ({"timezone": None}, {"hours": None}, {"name": None}, {"holidays": None}):
        refused = await tasks.client.patch(
            f"{API}/calendars/{made['id']}", json=body, headers=headers
        )
        assert refused.status_code == 422, (body, refused.text)
    rule = {"name": "r", "on": "shop.order.placed", "create_task": {"title": "Call"}}
    made = (await tasks.client.post(f"{API}/rules", json=rule, headers=admin.headers)).json()
    for body in ({"name": None}, {"create_task": None}, {"enabled": None}):
        refused = await tasks.client.patch(f"{API}/rules/{made['id']}", json=body, headers=headers)
        assert refused.status_code == 422, (body, refused.text)
