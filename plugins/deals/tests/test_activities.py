"""Activities: links that must fit, who owns them, read-only system entries, filters."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from deals_kit import API, Deals
from factories import make_activity, make_client, make_deal, make_policy

from crm2_core.api import utcnow

ACTIVITIES = f"{API}/activities"


async def post(deals: Deals, headers: dict[str, str], **fields: Any) -> Any:
    body = {"kind": "note", "subject": "hello", **fields}
    return await deals.client.post(ACTIVITIES, json=body, headers=headers)


async def test_create_a_note_on_a_client(deals: Deals) -> None:
    agent = await deals.user("agent")
    client = await make_client(deals.app, agent.id)
    r = await post(deals, agent.headers, client_id=str(client.id), body="Prefers e-mail")
    assert r.status_code == 201, r.text
    note = r.json()
    assert r.headers["etag"] == '"v1"'
    assert (note["kind"], note["body"], note["deal_id"], note["policy_id"]) == (
        "note", "Prefers e-mail", None, None,
    )  # fmt: skip
    assert note["author_id"] == note["owner_id"] == str(agent.id)
    r = await deals.client.get(f"{ACTIVITIES}/{note['id']}", headers=agent.headers)
    assert r.json() == note
    for listed in (ACTIVITIES, f"{API}/clients/{client.id}/timeline"):  # plain-row pages
        assert (await deals.client.get(listed, headers=agent.headers)).json()["items"] == [note]


async def test_system_kind_cannot_be_posted(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    r = await post(deals, admin.headers, kind="system", client_id=str(client.id))
    assert r.status_code == 422


async def test_an_activity_needs_a_link(deals: Deals) -> None:
    admin = await deals.user("admin")
    r = await post(deals, admin.headers)
    assert r.status_code == 422


async def test_the_client_comes_from_the_deal_or_policy(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client, deal_id=deal.id)
    r = await post(deals, admin.headers, kind="call", deal_id=str(deal.id))
    assert r.json()["client_id"] == str(client.id)
    r = await post(deals, admin.headers, kind="email", policy_id=str(policy.id))
    assert (r.json()["client_id"], r.json()["policy_id"]) == (str(client.id), str(policy.id))


async def test_a_deal_or_policy_of_another_client_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client, other = await make_client(deals.app, admin.id), await make_client(deals.app, admin.id)
    deal, policy = await make_deal(deals.app, other), await make_policy(deals.app, other)
    for link in ({"deal_id": str(deal.id)}, {"policy_id": str(policy.id)}):
        r = await post(deals, admin.headers, client_id=str(client.id), **link)
        assert r.status_code == 422, link
        assert r.json()["type"].endswith("deals-activity-link-invalid")
    r = await post(deals, admin.headers, client_id=str(uuid.uuid4()))
    assert r.status_code == 422


async def test_a_managers_note_belongs_to_the_records_owner(deals: Deals) -> None:
    manager, agent = await deals.user("manager"), await deals.user("agent")
    client = await make_client(deals.app, agent.id)
    r = await post(deals, manager.headers, client_id=str(client.id))
    note = r.json()
    assert (note["author_id"], note["owner_id"]) == (str(manager.id), str(agent.id))
    listed = (await deals.client.get(ACTIVITIES, headers=agent.headers)).json()["items"]
    assert [a["id"] for a in listed] == [note["id"]]


async def test_agent_never_sees_another_agents_activities(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    theirs = await make_activity(deals.app, await make_client(deals.app, agent2.id))
    mine = await make_activity(deals.app, await make_client(deals.app, agent1.id))
    listed = (await deals.client.get(ACTIVITIES, headers=agent1.headers)).json()["items"]
    assert [a["id"] for a in listed] == [str(mine.id)]
    r = await deals.client.get(f"{ACTIVITIES}/{theirs.id}", headers=agent1.headers)
    assert r.status_code == 404
    r = await post(deals, agent1.headers, client_id=str(theirs.client_id))
    assert r.status_code == 422


async def test_patch_with_if_match(deals: Deals) -> None:
    agent = await deals.user("agent")
    note = await make_activity(deals.app, await make_client(deals.app, agent.id))
    url = f"{ACTIVITIES}/{note.id}"
    r = await deals.client.patch(url, json={"body": "x"}, headers=agent.headers)
    assert r.status_code == 428
    r = await deals.client.patch(
        url, json={"body": "edited", "kind": "call"}, headers={**agent.headers, "If-Match": '"v1"'}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["body"], r.json()["kind"], r.headers["etag"]) == ("edited", "call", '"v2"')
    r = await deals.client.patch(
        url, json={"body": "y"}, headers={**agent.headers, "If-Match": '"v1"'}
    )
    assert r.status_code == 412
    r = await deals.client.patch(
        url, json={"kind": "system"}, headers={**agent.headers, "If-Match": '"v2"'}
    )
    assert r.status_code == 422


async def test_a_patch_that_changes_nothing_keeps_the_etag(deals: Deals) -> None:
    """An unchanged PATCH wrote the row anyway: a new version (every open ETag stale)."""
    agent = await deals.user("agent")
    note = await make_activity(deals.app, await make_client(deals.app, agent.id), body="same")
    url = f"{ACTIVITIES}/{note.id}"
    for body in ({}, {"kind": "note", "subject": note.subject, "body": "same"}):
        r = await deals.client.patch(url, json=body, headers={**agent.headers, "If-Match": '"v1"'})
        assert r.status_code == 200, r.text
        assert (r.headers["etag"], r.json()["version"]) == ('"v1"', note.version)


async def test_system_entries_are_read_only(deals: Deals) -> None:
    admin = await deals.user("admin")
    entry = await make_activity(deals.app, await make_client(deals.app, admin.id), kind="system")
    url = f"{ACTIVITIES}/{entry.id}"
    r = await deals.client.patch(
        url, json={"body": "x"}, headers={**admin.headers, "If-Match": f'"v{entry.version}"'}
    )
    assert r.status_code == 409
    r = await deals.client.delete(url, headers=admin.headers)
    assert r.status_code == 409


async def test_delete_needs_the_delete_permission(deals: Deals) -> None:
    agent, manager = await deals.user("agent"), await deals.user("manager")
    note = await make_activity(deals.app, await make_client(deals.app, agent.id))
    r = await deals.client.delete(f"{ACTIVITIES}/{note.id}", headers=agent.headers)
    assert r.status_code == 403
    r = await deals.client.delete(f"{ACTIVITIES}/{note.id}", headers=manager.headers)
    assert r.status_code == 204


async def test_list_filters_newest_first(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    deal = await make_deal(deals.app, client)
    policy = await make_policy(deals.app, client)
    now = utcnow()
    old = await make_activity(deals.app, client, now - timedelta(days=3), kind="call")
    on_deal = await make_activity(deals.app, client, now - timedelta(days=2), deal_id=deal.id)
    on_policy = await make_activity(deals.app, client, now - timedelta(days=1), policy_id=policy.id)
    other = await make_activity(deals.app, await make_client(deals.app, admin.id), now)

    async def ids(**params: Any) -> list[str]:
        r = await deals.client.get(ACTIVITIES, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["items"]]

    expected = [other.id, on_policy.id, on_deal.id, old.id]
    assert await ids() == [str(i) for i in expected]
    assert await ids(client=str(client.id)) == [str(on_policy.id), str(on_deal.id), str(old.id)]
    assert await ids(deal=str(deal.id)) == [str(on_deal.id)]
    assert await ids(policy=str(policy.id)) == [str(on_policy.id)]
    assert await ids(kind="call") == [str(old.id)]
    assert await ids(kind=["call", "note"], limit=1) == [str(other.id)]
    assert await ids(updated_since=(now + timedelta(hours=1)).isoformat()) == []


async def test_reassigned_records_take_their_activities_along(deals: Deals) -> None:
    first, second = await deals.user("agent"), await deals.user("agent")
    manager = await deals.user("manager")
    client = await make_client(deals.app, first.id)
    deal = await make_deal(deals.app, client, owner_id=first.id)
    on_client = await make_activity(deals.app, client, owner_id=first.id, subject="client note")
    on_deal = await make_activity(
        deals.app, client, deal_id=deal.id, owner_id=first.id, subject="deal note"
    )
    for path in (f"{API}/clients/{client.id}", f"{API}/deals/{deal.id}"):
        etag = (await deals.client.get(path, headers=manager.headers)).headers["etag"]
        r = await deals.client.patch(
            path, json={"owner_id": str(second.id)}, headers={**manager.headers, "If-Match": etag}
        )
        assert r.status_code == 200, r.text
    for activity in (on_client, on_deal):
        url = f"{ACTIVITIES}/{activity.id}"
        assert (await deals.client.get(url, headers=first.headers)).status_code == 404
        assert (await deals.client.get(url, headers=second.headers)).status_code == 200
    r = await deals.client.get(f"{ACTIVITIES}?client={client.id}", headers=first.headers)
    assert r.json()["items"] == []
    timeline = await deals.client.get(f"{API}/clients/{client.id}/timeline", headers=second.headers)
    assert {a["subject"] for a in timeline.json()["items"]} >= {"client note", "deal note"}


async def test_extreme_updated_since_is_not_a_server_error(deals: Deals) -> None:
    admin = await deals.user("admin")
    for path in ("clients", "deals", "policies", "activities"):
        r = await deals.client.get(
            f"{API}/{path}",
            params={"updated_since": "9999-12-31T23:59:59-23:00"},
            headers=admin.headers,
        )
        assert r.status_code == 200, (path, r.text)
        assert r.json()["items"] == []
