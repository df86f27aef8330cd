"""Tasks over HTTP with only the core and this plugin: CRUD, filters, verbs, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tasks_kit import API, Tasks


async def test_create_get_update_and_list(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    due = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    task = await tasks.create(
        agent,
        title="Call Anna",
        due_at=due.isoformat(),
        priority="high",
        tags=["call"],
        checklist=[{"text": "find number"}],
    )
    assert task["assignee_id"] == str(agent.id) and task["creator_id"] == str(agent.id)
    assert task["status"] == "todo" and task["version"] == 1 and not task["overdue"]
    got = await tasks.get(agent, task["id"])
    assert got.headers["ETag"] == '"v1"'
    changed = await tasks.patch(agent, task, status="in_progress", title="Call Anna back")
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2 and changed.headers["ETag"] == '"v2"'
    listed = await tasks.client.get(
        f"{API}/tasks", params={"q": "anna", "tag": "call"}, headers=agent.headers
    )
    assert [t["id"] for t in listed.json()["items"]] == [task["id"]]
    updated = await tasks.events("tasks.task.updated")
    assert updated[-1].data["changed"] == ["status", "title"]


async def test_patch_null_clears_due_at_and_is_refused_for_the_other_fields(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    task = await tasks.create(agent, title="Keep me", due_at="2030-01-07T09:00:00Z")
    for field in ("title", "description", "priority", "status", "tags", "reminders", "link"):
        refused = await tasks.patch(agent, task, **{field: None})
        assert refused.status_code == 422, (field, refused.text)
        assert field in refused.text
    cleared = await tasks.patch(agent, task, due_at=None)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["due_at"] is None and cleared.json()["title"] == "Keep me"


async def test_create_returns_location_and_honours_idempotency_key(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    headers = {**agent.headers, "Idempotency-Key": "task-1"}
    first = await tasks.client.post(f"{API}/tasks", json={"title": "Once"}, headers=headers)
    again = await tasks.client.post(f"{API}/tasks", json={"title": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.headers["Location"] == f"{API}/tasks/{first.json()['id']}"
    assert again.json()["id"] == first.json()["id"]
    assert len(await tasks.events("tasks.task.created")) == 1


async def test_stale_if_match_is_412_and_missing_is_428(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    task = await tasks.create(agent)
    assert (await tasks.patch(agent, task, title="one")).status_code == 200
    assert (await tasks.patch(agent, task, title="two")).status_code == 412
    bare = await tasks.client.patch(
        f"{API}/tasks/{task['id']}", json={"title": "x"}, headers=agent.headers
    )
    assert bare.status_code == 428


async def test_complete_reopen_and_assign(tasks: Tasks) -> None:
    agent, other = await tasks.user("agent"), await tasks.user("agent")
    task = await tasks.create(agent)
    done = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert done.json()["completed_at"] is not None
    twice = await tasks.client.post(f"{API}/tasks/{task['id']}/complete", headers=agent.headers)
    assert twice.status_code == 409
    assert (await tasks.patch(agent, done.json(), title="late edit")).status_code == 409
    reopened = await tasks.client.post(f"{API}/tasks/{task['id']}/reopen", headers=agent.headers)
    assert reopened.json()["status"] == "todo" and reopened.json()["completed_at"] is None
    given = await tasks.client.post(
        f"{API}/tasks/{task['id']}/assign",
        json={"assignee_id": str(other.id)},
        headers=agent.headers,
    )
    assert given.status_code == 200 and given.json()["assignee_id"] == str(other.id)
    # the creator still sees it; the new assignee too
    assert (await tasks.get(agent, task["id"])).status_code == 200
    assert (await tasks.get(other, task["id"])).status_code == 200
    types = [e.type for e in await tasks.events()]
    for kind in ("completed", "reopened", "assigned"):
        assert f"tasks.task.{kind}" in types


async def test_views_mine_overdue_and_due_today(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    now = datetime.now(UTC)
    late = await tasks.create(agent, due_at=(now - timedelta(hours=1)).isoformat())
    later = await tasks.create(agent, due_at=(now + timedelta(days=40)).isoformat())
    undated = await tasks.create(agent)
    mine = await tasks.client.get(f"{API}/views/mine", headers=agent.headers)
    assert [t["id"] for t in mine.json()["items"]] == [late["id"], later["id"], undated["id"]]
    overdue = await tasks.client.get(f"{API}/views/overdue", headers=agent.headers)
    assert [t["id"] for t in overdue.json()["items"]] == [late["id"]]
    assert overdue.json()["items"][0]["overdue"] is True
    today = await tasks.client.get(f"{API}/views/due-today", headers=agent.headers)
    assert [t["id"] for t in today.json()["items"]] == [late["id"]]


async def test_keyset_pages_cover_every_task_once(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    now = datetime.now(UTC)
    ids = {
        (await tasks.create(agent, due_at=(now + timedelta(hours=i % 3)).isoformat()))["id"]
        for i in range(7)
    }
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await tasks.client.get(f"{API}/tasks", params=params, headers=agent.headers)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)


async def test_bad_input_is_a_precise_4xx_and_changes_nothing(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    bad_bodies = [
        {"title": ""},
        {"title": "x", "due_at": "2026-12-01T10:00:00"},  # naive
        {"title": "x", "priority": "asap"},
        {"title": "x", "status": "done"},
        {"title": "x", "tags": ["a", "a"]},
        {"title": "x", "reminders": [-5]},
        {"title": "x", "assignee_id": str(uuid.uuid4())},
        {"title": "x", "link": {"kind": "deals.deal", "id": str(uuid.uuid4())}},
        {"title": "x", "link": {"kind": "DEALS", "id": "1"}},
        {"title": "x", "recurrence": "FREQ=DAILY"},  # no due_at
        {"title": "x", "due_at": "2026-12-01T10:00:00Z", "recurrence": "FREQ=SECONDLY"},
        {
            "title": "x",
            "due_at": "2026-12-01T10:00:00Z",
            "recurrence": "FREQ=DAILY",
            "timezone": "Nowhere/X",
        },
        {"title": "x", "unknown": 1},
    ]
    for body in bad_bodies:
        response = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    bad_queries = [
        {"sort": "password"},
        {"status": "sleeping"},
        {"due_from": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"link_kind": "x y"},
        {"limit": 0},
    ]
    for params in bad_queries:
        response = await tasks.client.get(f"{API}/tasks", params=params, headers=agent.headers)
        assert response.status_code in (400, 422), (params, response.text)
    assert (
        await tasks.client.get(f"{API}/tasks/not-a-uuid", headers=agent.headers)
    ).status_code == 422
    assert await tasks.events("tasks.task.created") == []


async def test_csv_export_is_formula_safe_and_visible_only(tasks: Tasks) -> None:
    manager = await tasks.user("manager")
    await tasks.create(manager, title='=HYPERLINK("http://evil")')
    response = await tasks.client.get(f"{API}/tasks/export", headers=manager.headers)
    assert response.status_code == 200 and response.headers["X-Columns-Version"] == "1"
    lines = response.text.splitlines()
    assert lines[0].startswith("id,title,status")
    assert "'=HYPERLINK" in lines[1]
    agent = await tasks.user("agent")
    assert (await tasks.client.get(f"{API}/tasks/export", headers=agent.headers)).status_code == 403


async def test_list_filters_declared_once_read_renamed_and_repeated_parameters(
    tasks: Tasks,
) -> None:
    """``TaskFilters`` is the declaration: ?status= repeats, ?open= and ?overdue= are read
    into ``statuses``, ``is_open`` and ``overdue_at`` (on the tasks clock)."""
    agent = await tasks.user("agent")
    now = datetime.now(UTC)
    late = await tasks.create(agent, due_at=(now - timedelta(hours=1)).isoformat())
    later = await tasks.create(agent, due_at=(now + timedelta(days=3)).isoformat())
    done = await tasks.create(agent)
    closed = await tasks.client.post(f"{API}/tasks/{done['id']}/complete", headers=agent.headers)
    assert closed.status_code == 200, closed.text

    async def ids(**params: Any) -> list[str]:
        response = await tasks.client.get(f"{API}/tasks", params=params, headers=agent.headers)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert await ids(overdue="true") == [late["id"]]
    assert set(await ids(status=["todo", "done"])) == {late["id"], later["id"], done["id"]}
    assert await ids(status="done") == [done["id"]]
    assert await ids(open="false") == [done["id"]]
    for bad in ({"status": "finished"}, {"open": "maybe"}, {"link_kind": "Deals"}):
        response = await tasks.client.get(f"{API}/tasks", params=bad, headers=agent.headers)
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["loc"][:2] == ["query", next(iter(bad))]


async def test_a_due_range_never_matches_a_task_without_a_due_time(tasks: Tasks) -> None:
    """``due_from``/``due_to`` read the sort key, where "no due time" is 9999-12-31: an
    undated task must still match neither bound, in the list and in the export."""
    manager = await tasks.user("manager")
    dated = await tasks.create(manager, due_at="2026-04-01T10:00:00Z")
    await tasks.create(manager)  # no due time
    for params in (
        {"due_from": "2026-01-01T00:00:00Z"},
        {"due_to": "9999-12-31T23:59:59Z"},
        {"due_from": "2026-01-01T00:00:00Z", "due_to": "9999-12-31T23:59:59Z"},
    ):
        listed = await tasks.client.get(f"{API}/tasks", params=params, headers=manager.headers)
        assert listed.status_code == 200, listed.text
        assert [t["id"] for t in listed.json()["items"]] == [dated["id"]], params
        export = await tasks.client.get(
            f"{API}/tasks/export", params=params, headers=manager.headers
        )
        assert export.status_code == 200, export.text
        rows = export.text.splitlines()[1:]
        assert [row.split(",")[0] for row in rows] == [dated["id"]], params
