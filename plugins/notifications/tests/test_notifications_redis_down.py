"""When the rate limiter's Redis does not answer: a delivery is given back at once (no
10-minute claim) and waits a growing back-off, the Telegram webhook still answers 2xx
(its answer held back), a sign-in to confirm is a 503 with Retry-After, a digest keeps
its day, and the outage is logged once. Redis is reached through a proxy on 127.0.0.1
that drops every connection while "down": the shared Redis is never stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from crm2_notifications.errors import RateLimiterUnavailable
from crm2_notifications.models import Delivery, TelegramLink, UserSettings
from crm2_notifications.ratelimit import RedisBuckets
from crm2_notifications.service import telegram
from crm2_notifications.service.delivery import LIMITER_DOWN, send_due
from crm2_notifications.service.digest import send_digests
from crm2_notifications.service.telegram import LINKED
from fake_telegram import FakeBotApi, fake_bot_api
from notifications_kit import API, Notifications, SmtpServer, shipped_rule
from redis.asyncio import Redis
from test_notifications_telegram import SECRET, telegram_settings
from test_notifications_telegram_login import LOGIN, _link

from crm2_core.api import utcnow
from crm2_core.testing.app import TEST_PASSWORD
from crm2_core.testing.redis_proxy import FlakyRedis
from crm2_core.testing.redis_proxy import flaky_redis as core_flaky_redis

DOWN = "Redis is not answering"


@pytest.fixture
async def flaky_redis(crm2_redis_url: tuple[str, str]) -> AsyncIterator[tuple[FlakyRedis, str]]:
    """The core's proxy, down until a test brings it up."""
    url, prefix = crm2_redis_url
    async with core_flaky_redis(url) as proxy:
        proxy.set("down")
        yield proxy, prefix


def _limiter(n: Notifications, proxy: FlakyRedis, prefix: str) -> RedisBuckets:
    """The plugin's buckets on Redis through the proxy (the core keeps its own in process)."""
    buckets = RedisBuckets(Redis.from_url(proxy.url), f"{prefix}notifications:rl:")
    n.context.provide(RedisBuckets, buckets)
    return buckets


def _outage_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The limiter's outage lines, on the plugin's logger (the core's guard writes them)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("crm2_notifications") and DOWN in r.getMessage()
    ]


def test_a_closed_port_is_a_503_error_with_a_growing_wait_capped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> list[float]:
        redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
        buckets = RedisBuckets(redis, "crm2_test_closed:")
        waits = []
        try:
            for _ in range(8):
                with pytest.raises(RateLimiterUnavailable) as down:
                    await buckets.take("email:x", 1.0, 1)
                assert down.value.status == 503
                assert down.value.headers == {"Retry-After": str(int(down.value.seconds))}
                waits.append(down.value.seconds)
        finally:
            await redis.aclose()
        return waits

    caplog.set_level(logging.WARNING, logger="crm2_notifications")
    # 5 s doubling, up to the limiter's own ceiling (longer than the core's 60 s)
    assert asyncio.run(run()) == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert len(_outage_logs(caplog)) == 1


async def test_a_delivery_is_given_back_at_once_while_redis_is_down_and_sent_once_it_is_back(
    crm2_app_factory: Any,
    smtp_server: SmtpServer,
    flaky_redis: tuple[FlakyRedis, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import ping_plugin

    caplog.set_level(logging.WARNING, logger="crm2_notifications")
    proxy, prefix = flaky_redis
    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": smtp_server.settings()},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    _limiter(n, proxy, prefix)
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, channels=["email"])
    for i in range(3):
        await n.ping(admin, title=f"n{i}", owner_id=owner.id)
    await n.settle()  # the "send" handler met the dead limiter: nothing sent, nothing claimed
    rows = await n.rows(Delivery)
    assert len(rows) == 3 and {d.status for d in rows} == {"pending"}
    assert {d.attempts for d in rows} == {0}  # not the message's fault
    held = [d for d in rows if d.last_error == LIMITER_DOWN]
    assert held and all(d.next_attempt_at > utcnow() for d in held)
    assert smtp_server.mailbox.messages == []

    # the job, later: the first one is given back again (a longer wait), the rest left
    later = utcnow() + timedelta(hours=1)
    outcomes = await send_due(n.context, now=later)
    assert outcomes["held"] == 1 and sum(outcomes.values()) == 1
    assert {d.status for d in await n.rows(Delivery)} == {"pending"}  # no claim left behind
    assert len(_outage_logs(caplog)) == 1  # once for the outage, not per call

    proxy.set("up")
    outcomes = await send_due(n.context, now=later + timedelta(hours=1))
    assert outcomes["delivered"] == 3
    assert len(smtp_server.mailbox.messages) == 3
    assert {d.status for d in await n.rows(Delivery)} == {"delivered"}


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    async with fake_bot_api() as fake:
        yield fake


async def test_the_webhook_answers_204_while_redis_is_down_and_the_answer_goes_later(
    crm2_app_factory: Any, bot: FakeBotApi, flaky_redis: tuple[FlakyRedis, str]
) -> None:
    proxy, prefix = flaky_redis
    app = await crm2_app_factory(
        plugins=["notifications"],
        plugin_settings={"notifications": telegram_settings(bot)},
        scheduler_enabled=False,
    )
    n = Notifications(app)
    _limiter(n, proxy, prefix)
    owner = await n.user("agent")
    code = (await n.client.post(f"{API}/telegram/link", headers=owner.headers)).json()["code"]
    body = {"update_id": 5, "message": {"chat": {"id": 777}, "text": f"/start {code}"}}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = await n.client.post(f"{API}/telegram/webhook", json=body, headers=headers)
    assert response.status_code == 204, response.text
    (link,) = await n.rows(TelegramLink)
    assert link.chat_id == 777  # committed, and Telegram told so
    assert bot.to(777) == []  # the answer waits: no sending past a pause nobody can tell of

    proxy.set("up")
    assert await telegram.flush_replies(n.context) == 1  # the deliveries job's flush
    assert bot.to(777) == [LINKED]


async def test_a_sign_in_to_confirm_is_a_503_with_retry_after_while_redis_is_down(
    crm2_app_factory: Any, bot: FakeBotApi, flaky_redis: tuple[FlakyRedis, str]
) -> None:
    proxy, prefix = flaky_redis
    app = await crm2_app_factory(
        plugins=["notifications"], plugin_settings={"notifications": telegram_settings(bot)}
    )
    n = Notifications(app)
    proxy.set("up")  # linking answers through the limiter too
    _limiter(n, proxy, prefix)
    owner = await n.user("agent")
    await _link(n, owner, chat=777)
    proxy.set("down")

    response = await n.client.post(LOGIN, json={"email": owner.email, "password": TEST_PASSWORD})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("notifications-rate-limiter-unavailable")
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_digest_keeps_its_day_while_redis_is_down(
    crm2_app_factory: Any, smtp_server: SmtpServer, flaky_redis: tuple[FlakyRedis, str]
) -> None:
    import ping_plugin

    proxy, prefix = flaky_redis
    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": smtp_server.settings(rate_burst=1, rate_per_minute=1)},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    proxy.set("up")
    _limiter(n, proxy, prefix)
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, channels=["email"])
    for i in range(3):
        await n.ping(admin, title=f"n{i}", owner_id=owner.id)
    await n.settle()
    assert sorted(d.status for d in await n.rows(Delivery)) == ["delivered"] + ["digest"] * 2

    proxy.set("down")
    tomorrow = (utcnow() + timedelta(days=1)).replace(hour=9)  # digest hour 8 UTC passed
    assert await send_digests(n.context, now=tomorrow) == 0
    assert {s.last_digest_on for s in await n.rows(UserSettings)} == {None}  # given back
    proxy.set("up")
    assert await send_digests(n.context, now=tomorrow) == 1  # the same day, once back
    assert {d.status for d in await n.rows(Delivery)} == {"delivered"}
