"""The in-app feed: only one's own, unread count, read marks, and the per-user SSE channel."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from notifications_kit import API, Notifications, User

from crm2_core.testing.sse import open_stream


async def _two_for(notifications: Notifications, owner: User) -> list[dict[str, Any]]:
    admin = await notifications.user("admin")
    await notifications.rule(admin)
    await notifications.ping(admin, title="One", owner_id=owner.id)
    await notifications.settle()  # events of two records may be handled in any order
    await notifications.ping(admin, title="Two", owner_id=owner.id)
    await notifications.settle()
    return await notifications.feed(owner)


async def test_feed_unread_count_and_read_marks(notifications: Notifications) -> None:
    owner = await notifications.user("agent")
    items = await _two_for(notifications, owner)
    assert [i["title"] for i in items] == ["Two", "One"]  # newest first
    client, headers = notifications.client, owner.headers
    for item in items:  # the page's plain rows show what each notification's GET does
        assert (await client.get(f"{API}/feed/{item['id']}", headers=headers)).json() == item
    count = await client.get(f"{API}/feed/unread-count", headers=headers)
    assert count.json() == {"unread": 2}
    one = await client.post(f"{API}/feed/{items[0]['id']}/read", headers=headers)
    assert one.status_code == 200 and one.json()["read_at"] is not None
    assert (await client.get(f"{API}/feed/unread-count", headers=headers)).json()["unread"] == 1
    unread = await notifications.feed(owner, unread_only="true")
    assert [i["title"] for i in unread] == ["One"]
    everything = await client.post(f"{API}/feed/read-all", headers=headers)
    assert everything.json() == {"marked": 1, "unread": 0}
    again = await client.post(f"{API}/feed/read", json={"ids": [items[1]["id"]]}, headers=headers)
    assert again.json() == {"marked": 0, "unread": 0}


async def test_another_users_notification_is_404_and_cannot_be_marked(
    notifications: Notifications,
) -> None:
    owner, other, admin = await notifications.users("agent", "agent", "admin")
    items = await _two_for(notifications, owner)
    client = notifications.client
    for who in (other, admin):  # not even an admin reads someone else's feed
        assert (
            await client.get(f"{API}/feed/{items[0]['id']}", headers=who.headers)
        ).status_code == 404
        marked = await client.post(f"{API}/feed/{items[0]['id']}/read", headers=who.headers)
        assert marked.status_code == 404
        bulk = await client.post(
            f"{API}/feed/read", json={"ids": [items[0]["id"]]}, headers=who.headers
        )
        assert bulk.json()["marked"] == 0
        assert await notifications.feed(who) == []
    missing = await client.get(f"{API}/feed/{uuid.uuid4()}", headers=owner.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"{API}/feed/unread-count", headers=owner.headers)).json()[
        "unread"
    ] == 2


async def test_bad_feed_input_is_4xx(notifications: Notifications) -> None:
    owner = await notifications.user("agent")
    client = notifications.client
    cases = [
        client.get(f"{API}/feed/not-a-uuid", headers=owner.headers),
        client.post(f"{API}/feed/read", json={"ids": []}, headers=owner.headers),
        client.post(f"{API}/feed/read", json={"ids": ["x"]}, headers=owner.headers),
        client.get(f"{API}/feed", params={"unread_only": "maybe"}, headers=owner.headers),
    ]
    for pending in cases:
        response = await pending
        assert 400 <= response.status_code < 500, response.text
    assert (await client.get(f"{API}/feed")).status_code == 401


async def test_the_notifications_stream_carries_only_ones_own(notifications: Notifications) -> None:
    admin, owner, other = await notifications.users("admin", "agent", "agent")
    await notifications.rule(admin)
    async with (
        open_stream(notifications.app, "notifications", other.headers) as others,
        open_stream(notifications.app, "notifications", owner.headers) as mine,
    ):
        await notifications.ping(admin, title="For owner", owner_id=owner.id)
        await notifications.ping(admin, title="For other", owner_id=other.id)
        await notifications.settle()
        first = await mine.next_event()
        assert first.event == "notifications.notification.created"
        assert first.json()["data"]["title"] == "For owner"
        theirs = await others.next_event()
        assert theirs.json()["data"]["title"] == "For other"
        await notifications.client.post(f"{API}/feed/read-all", headers=owner.headers)
        await notifications.settle()
        read = await mine.next_event()
        assert read.event == "notifications.feed.read" and read.json()["data"]["unread"] == 0


async def test_demo_seed_welcomes_every_user_once(notifications: Notifications) -> None:
    from crm2_notifications.seeds import seed

    owner = await notifications.user("agent")
    for _ in range(2):
        work = seed("demo", notifications.context)
        assert work is not None
        await work
    titles = [item["title"] for item in await notifications.feed(owner)]
    assert titles.count("Welcome to crm2") == 1 and len(titles) == 3  # + two samples
    assert seed("load", notifications.context) is None  # CRM2_SEED_NOTIFICATIONS unset


async def test_racing_read_alls_mark_each_notification_once(
    notifications: Notifications,
) -> None:
    """Each notification is marked (and announced read) by one request only: the others
    find nothing left to mark."""
    owner = await notifications.user("agent")
    await _two_for(notifications, owner)
    answers = await asyncio.gather(
        *(
            notifications.client.post(f"{API}/feed/read-all", headers=owner.headers)
            for _ in range(6)
        )
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["marked"] for a in answers) == 2


async def test_the_bulk_read_marks_declare_no_404(notifications: Notifications) -> None:
    """Ids that are not the caller's are ignored and no record is in the path: never a 404."""
    paths = (await notifications.client.get("/openapi.json")).json()["paths"]
    for path in (f"{API}/feed/read", f"{API}/feed/read-all"):
        responses = paths[path]["post"]["responses"]
        assert "404" not in responses and "422" in responses, path
