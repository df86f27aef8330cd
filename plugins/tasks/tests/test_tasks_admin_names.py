"""Calendar, SLA policy and rule names are unique without regard to case, beyond ASCII too."""

from __future__ import annotations

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
    ):
        made = await tasks.client.post(f"{API}/{path}", json={**body, "name": "Élan"}, headers=h)
        assert made.status_code == 201, made.text
        again = await tasks.client.post(f"{API}/{path}", json={**body, "name": "élan"}, headers=h)
        assert again.status_code == 422, (path, again.text)
        assert again.headers["content-type"] == "application/problem+json"
        assert "already called" in again.json()["detail"]
        listed = (await tasks.client.get(f"{API}/{path}", headers=h)).json()["items"]
        assert [item["name"] for item in listed] == ["Élan"]
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
    assert clash.status_code == 422, clash.text
    assert "already called" in clash.json()["detail"]
    kept = await tasks.client.get(f"{API}/rules/{second['id']}", headers=h)
    assert kept.json()["name"] == second["name"]
