"""A Telegram 429 pauses the whole bot, and every machine agrees on the pause's end: it
lives on Redis's clock (a key's TTL), not on each worker's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from crm2_notifications.channels import registry
from crm2_notifications.hookspecs import SendResult
from crm2_notifications.service.delivery import note_pause, paused_until
from fake_telegram import FakeBotApi, fake_bot_api
from notifications_kit import Notifications, shipped_rule
from test_notifications_telegram import telegram_settings

from crm2_core.api import utcnow


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    async with fake_bot_api() as fake:
        yield fake


async def _app(
    crm2_app_factory: Any, bot: FakeBotApi, *, core: dict[str, Any] | None = None, **settings: Any
) -> Notifications:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": {**telegram_settings(bot), **settings}},
        scheduler_enabled=False,
        **(core or {}),
    )
    await shipped_rule(app, enabled=False)
    return Notifications(app)


async def test_workers_with_skewed_clocks_agree_on_the_pause_on_redis(
    crm2_app_factory: Any, bot: FakeBotApi, crm2_redis_url: tuple[str, str]
) -> None:
    url, prefix = crm2_redis_url
    shared = {"redis_url": url, "redis_prefix": prefix}  # two machines, one Redis
    one = await _app(crm2_app_factory, bot, core=shared)
    two = await _app(crm2_app_factory, bot, core=shared)
    channel = registry(one.context).get("telegram")
    assert channel is not None
    real = utcnow()
    flood = SendResult.failed("429", status_code=429, retry_after=600, pause_channel=True)
    await note_pause(one.context, channel, flood)
    for skew in (timedelta(minutes=15), timedelta(minutes=-15)):  # the other machine's clock
        theirs = real + skew
        left = (await paused_until(two.context, channel, theirs) - theirs).total_seconds()
        assert 590 <= left <= 600, (skew, left)
