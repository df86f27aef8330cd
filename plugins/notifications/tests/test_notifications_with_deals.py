"""Deals and notifications together, with deals' shipped rules: a deal moved to a won stage
reaches its owner in the feed and on the ``notifications`` stream, by e-mail (aiosmtpd) and
on Telegram (the fake Bot API) — end to end through the outbox and the handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_telegram import FakeBotApi, fake_bot_api
from notifications_kit import API, Notifications, SmtpServer
from test_notifications_telegram import SECRET, telegram_settings

from crm2_core.testing.sse import open_stream

DEALS = "/api/v1/deals"


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    async with fake_bot_api() as fake:
        yield fake


async def test_a_won_deal_reaches_its_owner_on_every_channel(
    crm2_app_factory: Any, smtp_server: SmtpServer, bot: FakeBotApi
) -> None:
    settings = {**smtp_server.settings(), **telegram_settings(bot)}
    app = await crm2_app_factory(
        plugins=["deals", "notifications"], plugin_settings={"notifications": settings}
    )
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    rules = (await n.client.get(f"{API}/rules", headers=admin.headers)).json()["items"]
    assert {r["builtin_key"]: r["active"] for r in rules} == {
        "deals:deal-won": True,
        "deals:policy-renewal-due": True,
        "notifications:auth-login-delayed": True,
        "notifications:auth-login-denied": True,
    }

    code = (await n.client.post(f"{API}/telegram/link", headers=owner.headers)).json()["code"]
    update = {"update_id": 1, "message": {"chat": {"id": 5150}, "text": f"/start {code}"}}
    linked = await n.client.post(
        f"{API}/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert linked.status_code == 204

    pipeline = await n.client.post(
        f"{DEALS}/pipelines",
        json={
            "name": "Sales",
            "is_default": True,
            "stages": [
                {"name": "New", "probability": 10},
                {"name": "Won", "probability": 100, "kind": "won"},
            ],
        },
        headers=admin.headers,
    )
    assert pipeline.status_code == 201, pipeline.text
    won = next(s for s in pipeline.json()["stages"] if s["kind"] == "won")
    client = await n.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna Berg"}, headers=owner.headers
    )
    deal = await n.client.post(
        f"{DEALS}/deals",
        json={"title": "Fleet cover", "client_id": client.json()["id"], "value": "900.00"},
        headers=owner.headers,
    )
    assert deal.status_code == 201, deal.text

    async with open_stream(app, "notifications", owner.headers) as stream:
        moved = await n.client.post(
            f"{DEALS}/deals/{deal.json()['id']}/move",
            json={"stage_id": won["id"]},
            headers=owner.headers,
        )
        assert moved.status_code == 200, moved.text
        await n.settle()
        live = await stream.next_event()
    assert live.event == "notifications.notification.created"
    assert live.json()["data"]["title"] == "Deal won: Fleet cover"

    (item,) = await n.feed(owner)
    assert item["title"] == "Deal won: Fleet cover" and "900" in item["body"]
    (mail,) = smtp_server.mailbox.messages
    assert mail["Subject"] == "Deal won: Fleet cover"
    assert bot.to(5150)[-1].startswith("Deal won: Fleet cover")
    assert await n.feed(admin) == []  # only the owner
