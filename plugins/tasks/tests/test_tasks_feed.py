"""The per-user iCalendar feed: secret, revocable, only the user's assigned tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from crm2_tasks.ical import FeedItem, calendar, fold
from crm2_tasks.models import Task
from sqlalchemy import update
from sqlmodel import col
from tasks_kit import API, Tasks


async def test_the_feed_lists_my_tasks_and_stops_when_revoked(tasks: Tasks) -> None:
    me, other = await tasks.user("agent"), await tasks.user("agent")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    mine = await tasks.create(me, title="Call; Anna, today", due_at=due.isoformat())
    await tasks.create(other, title="Not mine", due_at=due.isoformat())
    await tasks.create(me, title="No due date")
    created = await tasks.client.post(f"{API}/feed", headers=me.headers)
    assert created.status_code == 201
    url = created.json()["url"]
    feed = await tasks.client.get(url)  # no login: the token is the key
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    body = feed.text
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert f"UID:{mine['id']}@crm2-tasks" in body
    assert "SUMMARY:Call\\; Anna\\, today" in body
    assert "Not mine" not in body and "No due date" not in body
    assert f"DTSTART:{due.strftime('%Y%m%dT%H%M%SZ')}" in body
    rotated = (await tasks.client.post(f"{API}/feed", headers=me.headers)).json()["url"]
    assert (await tasks.client.get(url)).status_code == 404  # the old address stopped
    assert (await tasks.client.delete(f"{API}/feed", headers=me.headers)).status_code == 204
    assert (await tasks.client.get(rotated)).status_code == 404
    assert (await tasks.client.delete(f"{API}/feed", headers=me.headers)).status_code == 404


async def test_the_feed_stops_at_once_when_its_owner_loses_tasks_read(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    role = {"name": "helper", "permissions": ["tasks:read", "tasks:write"]}
    made = await tasks.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
    assert made.status_code == 201, made.text
    helper = await tasks.user("helper")
    await tasks.create(helper, title="secret plan", due_at="2030-01-01T10:00:00Z")
    url = (await tasks.client.post(f"{API}/feed", headers=helper.headers)).json()["url"]
    assert "secret plan" in (await tasks.client.get(url)).text
    taken = await tasks.client.patch(
        "/api/v1/auth/roles/helper",
        json={"permissions": []},
        headers={**admin.headers, "If-Match": made.headers["ETag"]},
    )
    assert taken.status_code == 200, taken.text
    assert (await tasks.client.get(url)).status_code == 404


async def test_a_task_due_at_the_end_of_year_9999_does_not_break_the_feed(tasks: Tasks) -> None:
    me = await tasks.user("agent")
    task = await tasks.create(me, title="Someday", due_at="2999-12-31T23:50:00Z")
    async with tasks.app.context.session_factory() as session:  # a row from before the bounds
        last = datetime(9999, 12, 31, 23, 50, tzinfo=UTC)
        await session.execute(
            update(Task).where(col(Task.id) == uuid.UUID(task["id"])).values(due_at=last)
        )
        await session.commit()
    url = (await tasks.client.post(f"{API}/feed", headers=me.headers)).json()["url"]
    feed = await tasks.client.get(url)
    assert feed.status_code == 200, feed.text
    assert "DTSTART:99991231T235000Z\r\nDTEND:99991231T235959Z" in feed.text


async def test_a_guessed_token_is_404(tasks: Tasks) -> None:
    assert (await tasks.client.get(f"{API}/feed/guess.ics")).status_code == 404
    assert (await tasks.client.get(f"{API}/feed/{'x' * 500}.ics")).status_code in (404, 422)


def test_long_lines_are_folded_at_75_octets() -> None:
    line = "SUMMARY:" + "ä" * 100
    folded = fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert "".join(p.removeprefix(" ") for p in parts) == line


def test_control_characters_never_reach_the_feed() -> None:
    """RFC 5545 TEXT has no CONTROL characters but HTAB: a title with a bell or an escape
    (a rule's template fills it from any event) would make clients refuse the whole feed."""
    moment = datetime(2026, 3, 2, 9, tzinfo=UTC)
    item = FeedItem(
        uid="1@crm2-tasks",
        title="Call\x07 Anna\x1b[31m\x7f\ttoday",
        description="line\x00one\x0bline\x0ctwo\r\nthree\x1f",
        due_at=moment,
        updated_at=moment,
        done=False,
    )
    body = calendar("Tasks\x1b", [item], moment)
    content = body.replace("\r\n", "")
    assert not [c for c in content if (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F]
    assert "SUMMARY:Call Anna[31m\ttoday" in body
    assert "DESCRIPTION:lineonelinetwo\\nthree" in body


async def test_the_feed_routes_declare_only_the_statuses_they_answer(tasks: Tasks) -> None:
    """POST names no record (no 404; 409: an Idempotency-Key in flight); DELETE answers 404
    when there is no feed, and no write of it can conflict."""
    spec = (await tasks.client.get("/openapi.json")).json()
    feed = spec["paths"][f"{API}/feed"]
    assert "404" not in feed["post"]["responses"]
    assert "409" in feed["post"]["responses"]
    assert "404" in feed["delete"]["responses"]
    assert "409" not in feed["delete"]["responses"]
