"""Record-level visibility: another agent's task is a 404 on every id-bearing route."""

from __future__ import annotations

import uuid
from typing import Any

from crm2_tasks.visibility import can_see
from tasks_kit import API, Tasks

from crm2_core.api import Envelope
from crm2_hookspecs import Principal


async def test_every_id_route_answers_404_for_another_agents_task(tasks: Tasks) -> None:
    owner, stranger = await tasks.user("agent"), await tasks.user("agent")
    task = await tasks.create(owner)
    tid = task["id"]
    h = {**stranger.headers, "If-Match": '"v1"'}
    calls = [
        ("GET", f"{API}/tasks/{tid}", None),
        ("PATCH", f"{API}/tasks/{tid}", {"title": "mine now"}),
        ("POST", f"{API}/tasks/{tid}/complete", None),
        ("POST", f"{API}/tasks/{tid}/reopen", None),
        ("POST", f"{API}/tasks/{tid}/assign", {"assignee_id": str(stranger.id)}),
        ("GET", f"{API}/tasks/{tid}/sla", None),
    ]
    for method, url, body in calls:
        response = await tasks.client.request(method, url, json=body, headers=h)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["type"].endswith("tasks-task-not-found")
    listed = await tasks.client.get(f"{API}/tasks", headers=stranger.headers)
    assert listed.json()["items"] == []
    for view in ("mine", "overdue", "due-today"):
        shown = await tasks.client.get(f"{API}/views/{view}", headers=stranger.headers)
        assert shown.json()["items"] == []
    # a manager deletes; an agent may not delete at all
    manager = await tasks.user("manager")
    assert (
        await tasks.client.delete(f"{API}/tasks/{tid}", headers=owner.headers)
    ).status_code == 403
    assert (
        await tasks.client.delete(f"{API}/tasks/{tid}", headers=manager.headers)
    ).status_code == 204
    assert (await tasks.get(owner, tid)).status_code == 404


async def test_managers_and_viewers_see_every_task_and_viewers_change_none(tasks: Tasks) -> None:
    agent, manager, viewer = (
        await tasks.user("agent"),
        await tasks.user("manager"),
        await tasks.user("viewer"),
    )
    task = await tasks.create(agent)
    assert (await tasks.get(manager, task["id"])).status_code == 200
    assert (await tasks.get(viewer, task["id"])).status_code == 200
    assert (await tasks.patch(viewer, task, title="x")).status_code == 403


async def test_an_agent_cannot_link_to_a_task_they_cannot_see(tasks: Tasks) -> None:
    owner, stranger = await tasks.user("agent"), await tasks.user("agent")
    hidden = await tasks.create(owner)
    link = {"kind": "tasks.task", "id": hidden["id"]}
    refused = await tasks.client.post(
        f"{API}/tasks", json={"title": "sub", "link": link}, headers=stranger.headers
    )
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("link-invalid")
    allowed = await tasks.create(owner, title="sub", link=link)
    assert allowed["link"] == link


async def test_a_patch_with_a_bad_link_on_an_invisible_task_is_404_not_422(tasks: Tasks) -> None:
    """Visibility first: a 422 about the link would tell a stranger the task exists."""
    owner, stranger = await tasks.user("agent"), await tasks.user("agent")
    task = await tasks.create(owner)
    absent = str(uuid.uuid4())
    for link in ({"kind": "tasks.task", "id": absent}, {"kind": "nothing.x", "id": absent}):
        response = await tasks.patch(stranger, task, link=link)
        assert response.status_code == 404, (link, response.text)
        assert response.json()["type"].endswith("tasks-task-not-found")
    missing = {**task, "id": str(uuid.uuid4())}
    assert (await tasks.patch(stranger, missing, link=link)).status_code == 404
    # the owner still hears about the bad link
    refused = await tasks.patch(owner, task, link=link)
    assert refused.status_code == 422, refused.text


def _principal(user_id: uuid.UUID, *permissions: str) -> Principal:
    return Principal(
        id=user_id, kind="user", roles=frozenset({"agent"}), permissions=frozenset(permissions)
    )


async def test_the_stream_shows_an_event_to_assignee_creator_and_all_records_only(
    tasks: Tasks,
) -> None:
    creator, assignee, stranger = (
        await tasks.user("agent"),
        await tasks.user("agent"),
        await tasks.user("agent"),
    )
    await tasks.create(creator, assignee_id=str(assignee.id))
    (record,) = await tasks.events("tasks.task.created")
    envelope: Any = Envelope.from_record(record)
    ctx = tasks.app.context
    assert await can_see(_principal(creator.id, "tasks:read"), envelope, ctx)
    assert await can_see(_principal(assignee.id, "tasks:read"), envelope, ctx)
    assert not await can_see(_principal(stranger.id, "tasks:read"), envelope, ctx)
    assert await can_see(_principal(stranger.id, "tasks:read", "tasks:all_records"), envelope, ctx)
    assert not await can_see(_principal(stranger.id), {"type": "tasks.task.created"}, ctx)


async def test_the_stream_channel_is_declared(tasks: Tasks) -> None:
    channels = [
        c
        for plugin, c in tasks.app.context.plugins.collect(
            "crm2_sse_channels", context=tasks.app.context
        )
        if plugin == "tasks"
    ]
    assert [(c.name, c.permission) for c in channels] == [("tasks", "tasks:read")]
    assert channels[0].matches("tasks.sla.breached") and not channels[0].matches("deals.deal.won")


async def test_a_patch_sending_back_an_unchanged_link_the_editor_no_longer_sees_is_accepted(
    tasks: Tasks,
) -> None:
    """A client sends the task back as it read it: the link it already has is not checked
    again (the editor may have lost sight of the record since); a changed one still is."""
    manager, agent, other = (
        await tasks.user("manager"),
        await tasks.user("agent"),
        await tasks.user("agent"),
    )
    record = await tasks.create(manager, assignee_id=str(agent.id))
    link = {"kind": "tasks.task", "id": record["id"]}
    task = await tasks.create(agent, title="follow-up", link=link)
    moved = await tasks.client.post(
        f"{API}/tasks/{record['id']}/assign",
        json={"assignee_id": str(other.id)},
        headers=manager.headers,
    )
    assert moved.status_code == 200, moved.text
    assert (await tasks.get(agent, record["id"])).status_code == 404
    # the unchanged link, in another case and as the client read it
    for sent in (link, {"kind": "tasks.task", "id": record["id"].upper()}):
        edited = await tasks.patch(agent, task, title=f"renamed {task['version']}", link=sent)
        assert edited.status_code == 200, edited.text
        task = edited.json()
        assert task["link"] == link
    # another record the agent cannot see: refused, nothing changed
    hidden = await tasks.create(manager, assignee_id=str(other.id))
    refused = await tasks.patch(
        agent, task, title="again", link={"kind": "tasks.task", "id": hidden["id"]}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("link-invalid")
    assert (await tasks.get(agent, task["id"])).json() == task
