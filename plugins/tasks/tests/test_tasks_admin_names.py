"""Calendar, SLA policy and rule names are unique without regard to case, beyond ASCII too."""

from __future__ import annotations

import pytest
from crm2_tasks.repository import admin as admin_repo
from tasks_kit import API, Tasks

HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


async def test_calendar_and_policy_names_collide_whatever_the_case_of_accented_letters(
    tasks: Tasks,
) -> None:
    admin = await tasks.user("admin")
    h = admin.headers
    for path, body in (
        ("calendars", {"timezone": "Europe/Paris", "hours": HOURS}),
        ("sla-policies", {"response_minutes": 30}),
        ("rules", {"on": "shop.order.placed", "create_task": {"title": "Call"}}),
    ):
        made = await tasks.client.post(f"{API}/{path}", json={**body, "name": "Élan"}, headers=h)
        assert made.status_code == 201, made.text
        again = await tasks.client.post(f"{API}/{path}", json={**body, "name": "élan"}, headers=h)
        # a clash with a committed row is a conflict with existing state, as a lost race is
        assert again.status_code == 409, (path, again.text)
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["type"].endswith("tasks-name-taken")
        assert "already called" in again.json()["detail"]
        listed = (await tasks.client.get(f"{API}/{path}?limit=100", headers=h)).json()["items"]
        names = [item["name"] for item in listed]  # shipped rules are listed too
        assert names.count("Élan") == 1 and "élan" not in names
        # a row may take another case of its own name
        own = await tasks.client.patch(
            f"{API}/{path}/{made.json()['id']}",
            json={"name": "ÉLAN"},
            headers={**h, "If-Match": made.headers["ETag"]},
        )
        assert own.status_code == 200, own.text


async def test_a_rule_cannot_be_renamed_to_another_case_of_another_rules_name(
    tasks: Tasks,
) -> None:
    admin = await tasks.user("admin")
    h = admin.headers
    first, second = (await tasks.client.get(f"{API}/rules", headers=h)).json()["items"][:2]
    renamed = await tasks.client.patch(
        f"{API}/rules/{first['id']}",
        json={"name": "Règle Élan"},
        headers={**h, "If-Match": f'"v{first["version"]}"'},
    )
    assert renamed.status_code == 200, renamed.text
    clash = await tasks.client.patch(
        f"{API}/rules/{second['id']}",
        json={"name": "rÈgle élan"},
        headers={**h, "If-Match": f'"v{second["version"]}"'},
    )
    assert clash.status_code == 409, clash.text
    assert clash.json()["type"].endswith("tasks-name-taken")
    assert "already called" in clash.json()["detail"]
    kept = await tasks.client.get(f"{API}/rules/{second['id']}", headers=h)
    assert kept.json()["name"] == second["name"]


BODIES = (
    ("calendars", {"timezone": "Europe/Paris", "hours": HOURS}),
    ("sla-policies", {"response_minutes": 30}),
    ("rules", {"on": "shop.order.placed", "create_task": {"title": "Call"}}),
)


async def test_a_create_or_rename_that_lost_the_race_for_a_name_is_409(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests that both passed the name check before either wrote: the database's
    folded key refuses the second, whatever the case of its accented letters."""
    admin = await tasks.user("admin")
    h = admin.headers
    monkeypatch.setattr(admin_repo, "name_taken", _never_taken)  # the check saw no rival yet
    for path, body in BODIES:
        first = await tasks.client.post(f"{API}/{path}", json={**body, "name": "Élan"}, headers=h)
        assert first.status_code == 201, first.text
        raced = await tasks.client.post(f"{API}/{path}", json={**body, "name": "élan"}, headers=h)
        assert raced.status_code == 409, (path, raced.text)
        assert raced.headers["content-type"] == "application/problem+json"
        assert raced.json()["type"].endswith("tasks-name-taken")
        other = await tasks.client.post(f"{API}/{path}", json={**body, "name": "Other"}, headers=h)
        assert other.status_code == 201, other.text
        renamed = await tasks.client.patch(
            f"{API}/{path}/{other.json()['id']}",
            json={"name": "ÉLAN"},
            headers={**h, "If-Match": other.headers["ETag"]},
        )
        assert renamed.status_code == 409, (path, renamed.text)
        assert renamed.json()["type"].endswith("tasks-name-taken")
        listed = (await tasks.client.get(f"{API}/{path}?limit=100", headers=h)).json()["items"]
        names = [item["name"] for item in listed]
        assert names.count("Élan") == 1 and "élan" not in names and "ÉLAN" not in names


async def _never_taken(*_args: object, **_kwargs: object) -> bool:
    return False
