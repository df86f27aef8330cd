"""A Telegram 429 pauses the whole bot: digests due meanwhile stay one digest, sign-in
confirmations fail fast instead of prolonging the ban, and every machine agrees on the
pause's end because it lives on Redis's clock, not on each worker's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm2_notifications.channels import registry
from crm2_notifications.clock import set_clock
from crm2_notifications.hookspecs import SendResult
from crm2_notifications.jobs import scheduled_jobs
from crm2_notifications.models import Delivery
from crm2_notifications.ratelimit import buckets_for
from crm2_notifications.service.delivery import note_pause, paused_until, send_due
from crm2_notifications.service.digest import send_digests
from crm2_notifications.service.telegram import (
    LINKED,
    REPLY_QUEUE,
    REPLY_TTL,
    flush_replies,
    pending_replies,
    reply,
)
from fake_telegram import FakeBotApi, fake_bot_api
from notifications_kit import API, Notifications, User, shipped_rule
from test_notifications_telegram import _code, _update, telegram_settings
from test_notifications_telegram_login import _link

from crm2_core.api import utcnow
from crm2_core.testing.app import TEST_PASSWORD

LOGIN = "/api/v1/auth/login"


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


async def _telegram_digest(n: Notifications, user: User, *, chat: int, update_id: int) -> None:
    """Link the user's Telegram chat and have its deliveries as a daily digest (UTC)."""
    linked = await _update(n, update_id, f"/start {await _code(n, user)}", chat=chat)
    assert linked.status_code == 204
    prefs = await n.client.get(f"{API}/preferences", headers=user.headers)
    digest = [{"channel": "telegram", "event_type": "*", "mode": "digest"}]
    changed = await n.client.patch(
        f"{API}/preferences",
        json={"timezone": "UTC", "rules": digest},
        headers={**user.headers, "If-Match": prefs.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text


async def test_a_digest_due_during_a_bot_pause_stays_one_digest_sent_after_it(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    n = await _app(crm2_app_factory, bot, digest_hour=8)
    admin, reader, other = await n.users("admin", "agent", "agent")
    await _telegram_digest(n, reader, chat=777, update_id=90)
    assert (await _update(n, 91, f"/start {await _code(n, other)}", chat=888)).status_code == 204
    await n.rule(admin, template={"title": "{{ data.title }}"}, channels=["telegram"])
    now = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
    set_clock(n.context, lambda: now)
    for title in ("first", "second"):
        await n.ping(admin, title=title, owner_id=reader.id)
    await n.settle()
    # 07:55: another chat's message meets flood control: the bot waits ten minutes
    now = datetime(2026, 3, 29, 7, 55, tzinfo=UTC)
    bot.flood, bot.retry_after = 1, 600
    await n.ping(admin, title="to other", owner_id=other.id)
    await n.settle()
    assert bot.to(777)[1:] == []

    now = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # the digest is due, the bot still waits
    assert await send_digests(n.context, now=now) == 0
    assert bot.to(777)[1:] == []
    held = [d for d in await n.rows(Delivery) if d.user_id == reader.id]
    assert [d.status for d in held] == ["digest", "digest"], [
        (d.status, d.last_error) for d in held
    ]
    await send_due(n.context, now=now)  # nothing of it goes out one by one meanwhile
    assert bot.to(777)[1:] == []

    now = datetime(2026, 3, 29, 8, 6, tzinfo=UTC)  # the pause is over
    assert await send_digests(n.context, now=now) == 1
    (sent,) = bot.to(777)[1:]
    assert sent.startswith("crm2: 2 notification(s) of 2026-03-29")
    assert "first" in sent and "second" in sent
    assert {d.status for d in await n.rows(Delivery) if d.user_id == reader.id} == {"delivered"}
    assert await send_digests(n.context, now=now + timedelta(hours=1)) == 0  # once a day


async def test_a_sign_in_during_a_bot_pause_fails_fast_and_says_until_when(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    n = await _app(crm2_app_factory, bot)
    owner = await n.user("agent")
    await _link(n, owner, chat=777)
    bot.flood, bot.retry_after = 1, 600  # the question itself meets flood control
    body = {"email": owner.email, "password": TEST_PASSWORD}
    first = await n.client.post(LOGIN, json=body)
    assert first.status_code == 503, first.text
    assert first.headers["content-type"] == "application/problem+json"
    assert first.json()["type"].endswith("notifications-telegram-paused")
    assert 590 <= int(first.headers["retry-after"]) <= 600
    calls = len(bot.calls)
    again = await n.client.post(LOGIN, json=body)  # the bot waits: Telegram is not asked
    assert again.status_code == 503 and len(bot.calls) == calls
    assert again.json()["type"].endswith("notifications-telegram-paused")
    assert "Telegram" in again.json()["detail"] and again.headers["retry-after"]
    # the pause the question met holds the bot's deliveries too
    channel = registry(n.context).get("telegram")
    assert channel is not None
    assert await paused_until(n.context, channel, utcnow()) > utcnow() + timedelta(seconds=590)


async def test_the_webhooks_replies_honour_the_bot_pause(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    """The bot's answers in chats (``/start``, button presses) are messages too: during
    a pause they are not sent, and a 429 to one pauses the bot like a delivery's."""
    n = await _app(crm2_app_factory, bot)
    first, second = await n.users("agent", "agent")
    bot.flood, bot.retry_after = 1, 600  # the answer to this /start meets flood control
    assert (await _update(n, 95, f"/start {await _code(n, first)}", chat=777)).status_code == 204
    channel = registry(n.context).get("telegram")
    assert channel is not None
    assert await paused_until(n.context, channel, utcnow()) > utcnow() + timedelta(seconds=590)
    calls = len(bot.calls)
    assert (await _update(n, 96, f"/start {await _code(n, second)}", chat=888)).status_code == 204
    assert len(bot.calls) == calls  # linked, but not answered while the bot waits
    shown = await n.client.get(f"{API}/telegram", headers=second.headers)
    assert shown.json()["linked"] is True
    await _deliveries_job(n)  # still paused: still waiting, not dropped
    assert bot.to(888) == []
    later = utcnow() + timedelta(seconds=601)
    set_clock(n.context, lambda: later)  # the pause is over
    await _deliveries_job(n)
    assert bot.to(888) == [LINKED]  # the answer held back is sent after the pause, once
    await _deliveries_job(n)
    assert bot.to(888) == [LINKED]


async def _deliveries_job(n: Notifications) -> None:
    (job,) = [j for j in scheduled_jobs(n.context) if j.name == "deliveries"]
    await job.run(n.context)


async def test_held_back_webhook_answers_are_bounded_in_number_and_age(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    n = await _app(crm2_app_factory, bot)
    channel = registry(n.context).get("telegram")
    assert channel is not None
    flood = SendResult.failed("429", status_code=429, retry_after=600, pause_channel=True)
    await note_pause(n.context, channel, flood)
    start = utcnow()
    set_clock(n.context, lambda: start)
    calls = [("sendMessage", {"chat_id": i, "text": "hi"}) for i in range(REPLY_QUEUE + 50)]
    assert await reply(n.context, calls) == 0
    assert len(pending_replies(n.context)) == REPLY_QUEUE  # the oldest gave way
    later = start + REPLY_TTL + timedelta(seconds=1)
    set_clock(n.context, lambda: later)  # the pause is over, but they are too old now
    assert await flush_replies(n.context) == 0
    assert bot.sent == [] and len(pending_replies(n.context)) == 0


async def test_a_sign_in_question_takes_a_token_of_the_bots_limit_and_fails_fast_without(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    """The question is a message of the bot like a delivery: it takes a token of the
    bot-wide bucket, and with none there the sign-in is refused at once (503 with
    Retry-After), never made to wait for one nor sent over the limit."""
    n = await _app(crm2_app_factory, bot, telegram_rate_per_second=0.01)  # 1 per 100 s
    owner = await n.user("agent")
    await _link(n, owner, chat=777)
    await buckets_for(n.context).refund("telegram:*", 1)  # the bot's one token is there
    body = {"email": owner.email, "password": TEST_PASSWORD}
    first = await n.client.post(LOGIN, json=body)
    assert first.status_code == 202, first.text
    calls = len(bot.calls)
    second = await n.client.post(LOGIN, json=body)  # the first question took the token
    assert second.status_code == 503, second.text
    assert second.headers["content-type"] == "application/problem+json"
    # its own problem type: no flood control holds the bot, it is only at its own limit
    assert second.json()["type"].endswith("notifications-telegram-rate-limited")
    assert "flood" not in second.json()["title"].lower()
    assert "rate limit" in second.json()["title"]
    assert "rate limit" in second.json()["detail"] and "flood" not in second.json()["detail"]
    assert 1 <= int(second.headers["retry-after"]) <= 100
    assert len(bot.calls) == calls  # Telegram was not asked


async def test_the_webhooks_replies_take_tokens_of_the_bots_limit(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    n = await _app(crm2_app_factory, bot, telegram_rate_per_second=0.01)
    first, second = await n.users("agent", "agent")
    assert (await _update(n, 97, f"/start {await _code(n, first)}", chat=777)).status_code == 204
    assert bot.to(777)  # answered: the bot's one token
    calls = len(bot.calls)
    assert (await _update(n, 98, f"/start {await _code(n, second)}", chat=888)).status_code == 204
    assert len(bot.calls) == calls  # linked, but no token for the answer: not sent now
    shown = await n.client.get(f"{API}/telegram", headers=second.headers)
    assert shown.json()["linked"] is True
    await buckets_for(n.context).refund("telegram:*", 1)  # a token is there again
    await _deliveries_job(n)
    assert bot.to(888) == [LINKED]  # held back, not dropped


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


async def test_a_digest_takes_a_token_of_the_bots_limit_and_waits_without_one(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    """Digests go out together at the digest hour: each is a message of the bot like a
    delivery, so each takes a token of the bot-wide bucket; one without is held (its
    deliveries stay ``digest``) and goes on a later run, not over Telegram's limit."""
    n = await _app(crm2_app_factory, bot, digest_hour=8, telegram_rate_per_second=0.01)
    admin, one, two = await n.users("admin", "agent", "agent")
    await _telegram_digest(n, one, chat=777, update_id=80)
    await _telegram_digest(n, two, chat=888, update_id=81)
    await n.rule(admin, template={"title": "{{ data.title }}"}, channels=["telegram"])
    now = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
    set_clock(n.context, lambda: now)
    await n.ping(admin, title="for one", owner_id=one.id)
    await n.ping(admin, title="for two", owner_id=two.id)
    await n.settle()
    pending_replies(n.context).clear()  # the second "Linked" waits for a token too
    await buckets_for(n.context).refund("telegram:*", 1)  # the bot has one token
    now = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert await send_digests(n.context, now=now) == 1
    digests = [m for m in await bot.texts() if m.startswith("crm2: ")]
    assert len(digests) == 1
    waiting = [d.status for d in await n.rows(Delivery) if d.channel == "telegram"]
    assert sorted(waiting) == ["delivered", "digest"]
    await buckets_for(n.context).refund("telegram:*", 1)  # a token again
    assert await send_digests(n.context, now=now) == 1
    assert len([m for m in await bot.texts() if m.startswith("crm2: ")]) == 2
