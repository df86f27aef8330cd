"""``crm2 seed demo`` (a feed, preferences and a delivery log per demo user; a second run
adds nothing) and the ``load`` data set (big feeds read through the API)."""

from __future__ import annotations

import inspect
from typing import Any

from crm2_notifications.models import Delivery, DeliveryAttempt, Notification, Preference
from notifications_kit import API, Notifications
from sqlalchemy import func, select


async def seed_demo(app: Any) -> None:
    """What ``crm2 seed demo`` does: every enabled plugin's seed, in dependency order."""
    for _plugin, result in app.context.plugins.call("crm2_seed", name="demo", context=app.context):
        if inspect.isawaitable(result):
            await result


async def counts(n: Notifications) -> dict[str, int]:
    async with n.context.session_factory() as session:
        return {
            model.__name__: (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()
            for model in (Notification, Delivery, DeliveryAttempt, Preference)
        }


async def test_demo_gives_feeds_preferences_and_a_delivery_log(
    notifications: Notifications,
) -> None:
    admin, agent, other = await notifications.users("admin", "agent", "agent")
    await notifications.user("manager")
    await seed_demo(notifications.app)
    first = await counts(notifications)
    assert first["Notification"] == 4 * 3  # welcome + two samples (no deals here) each
    assert first["Delivery"] == 4 and first["Preference"] == 1  # agents' samples mailed
    feed = await notifications.feed(agent)
    assert "Welcome to crm2" in [i["title"] for i in feed] and len(feed) == 3
    dead = (await notifications.client.get(
        f"{API}/deliveries", params={"status": "dead"}, headers=admin.headers
    )).json()["items"]  # fmt: skip
    assert len(dead) == 1 and dead[0]["attempts"] == 6
    shown = []
    for note in feed:
        got = await notifications.client.get(
            f"{API}/feed/{note['id']}/deliveries", headers=agent.headers
        )
        shown += got.json()["items"]
    assert sorted(len(d["log"]) for d in shown) == [1, 6]  # the first agent's: one dead
    await seed_demo(notifications.app)
    assert await counts(notifications) == first
    assert len(await notifications.feed(other)) == 3


async def test_the_load_data_set_fills_feeds_read_through_the_api(
    notifications: Notifications,
) -> None:
    from crm2_notifications.seed_load import seed_load

    agents = await notifications.users("agent", "agent")
    written = await seed_load(notifications.context, notifications=1_200)
    assert written == {"notifications": 1_200, "deliveries": 300}
    first = await notifications.client.get(
        f"{API}/feed", params={"limit": 100}, headers=agents[0].headers
    )
    assert len(first.json()["items"]) == 100 and first.json()["next_cursor"]
    unread = await notifications.client.get(f"{API}/feed/unread-count", headers=agents[1].headers)
    assert unread.json()["unread"] == 200  # 600 each, one in three unread
