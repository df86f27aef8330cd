"""The ``telegram`` channel and bot against a fake Bot API on 127.0.0.1: the channel
contract, the secret token, ``update_id`` dedup, and linking a chat with ``/start <code>``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from crm2_notifications.channels.telegram import MAX_TEXT, TelegramChannel, render_text
from crm2_notifications.clock import set_clock
from crm2_notifications.hookspecs import NotificationChannel, OutboundMessage
from crm2_notifications.models import TelegramLink
from crm2_notifications.service.telegram import BAD_CODE, LINKED
from crm2_notifications.testing import ChannelContract
from fake_telegram import TOKEN, FakeBotApi, fake_bot_api
from notifications_kit import API, Notifications, User, shipped_rule

from crm2_core.api import utcnow

SECRET = "webhook-secret-0123456789"


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    async with fake_bot_api() as fake:
        yield fake


def telegram_settings(fake: FakeBotApi) -> dict[str, Any]:
    return {
        "telegram_bot_token": TOKEN,
        "telegram_api_base_url": fake.url,
        "telegram_webhook_secret": SECRET,
        "telegram_bot_name": "crm2_test_bot",
    }


class TestTelegramChannel(ChannelContract):
    @pytest.fixture
    def channel(self) -> NotificationChannel:
        return TelegramChannel(rate_per_second=25)

    @pytest.fixture
    async def channel_context(self, crm2_app_factory: Any, bot: FakeBotApi) -> Any:
        app = await crm2_app_factory(
            plugins=["notifications"], plugin_settings={"notifications": telegram_settings(bot)}
        )
        return app.context

    @pytest.fixture
    def address(self) -> str:
        return "4242"

    @pytest.fixture
    def received(self, bot: FakeBotApi) -> Any:
        return bot.texts

    @pytest.fixture
    def service_down(self, bot: FakeBotApi) -> Any:
        return bot.fail


@pytest.fixture
async def with_bot(crm2_app_factory: Any, bot: FakeBotApi) -> Notifications:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": telegram_settings(bot)},
    )
    await shipped_rule(app, enabled=False)
    return Notifications(app)


async def _update(
    n: Notifications, update_id: int, text: str, chat: int = 777, secret: str | None = SECRET
) -> Any:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    body = {
        "update_id": update_id,
        "message": {"message_id": 1, "chat": {"id": chat, "type": "private"}, "text": text},
    }
    return await n.client.post(f"{API}/telegram/webhook", json=body, headers=headers)


async def _code(n: Notifications, user: User) -> str:
    made = await n.client.post(f"{API}/telegram/link", headers=user.headers)
    assert made.status_code == 201, made.text
    assert made.json()["url"] == f"https://t.me/crm2_test_bot?start={made.json()['code']}"
    return str(made.json()["code"])


def test_the_text_limit_counts_characters_as_telegram_does_not_utf16_units() -> None:
    """sendMessage takes "1-4096 characters after entities parsing"; the Bot API server
    (TDLib) counts them with ``utf8_length``, Unicode characters, not the UTF-16 units
    entity offsets use: 4,096 emoji (8,192 UTF-16 units) still make one whole message."""

    def text(title: str, body: str) -> str:
        return render_text(OutboundMessage(uuid.uuid4(), "telegram", title, body, "x.y"))

    party = "\N{PARTY POPPER}"  # one character, two UTF-16 units
    assert text("t", party * 3000) == "t\n\n" + party * 3000  # 6,000 units: not cut
    cut = text(party, party * 5000)
    assert len(cut) == MAX_TEXT == 4096
    assert cut == party + "\n\n" + party * (MAX_TEXT - 3)


def test_the_text_limit_never_cuts_a_joined_emoji_or_a_letters_marks() -> None:
    """A cut at 4,096 code points that falls inside a grapheme cluster (a ZWJ family,
    a flag, a skin tone, a keycap, a letter with its combining marks) moves back to the
    cluster's start: Telegram would show half of it as another emoji or a lone mark."""

    def text(body: str) -> str:
        return render_text(OutboundMessage(uuid.uuid4(), "telegram", "t", body, "x.y"))

    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
    flag = "\U0001f1fa\U0001f1e6"
    thumbs = "\U0001f44d\U0001f3fd"
    keycap = "1\ufe0f\u20e3"
    accented = "e\u0301\u0323"
    hangul = "\u1100\u1161\u11a8"  # one syllable of conjoining jamo
    room = MAX_TEXT - len("t\n\n")
    for cluster in (family, flag, thumbs, keycap, accented, hangul):
        for offset in range(1, len(cluster)):  # the limit falls inside the cluster
            body = "a" * (room - offset) + cluster + "tail"
            cut = text(body)
            assert len(cut) <= MAX_TEXT
            assert cut == "t\n\n" + "a" * (room - offset), (cluster, offset)
        whole = text("a" * (room - len(cluster)) + cluster + "tail")
        assert whole.endswith(cluster) and len(whole) == MAX_TEXT
    # a run of flags is cut between two flags, never inside one
    flags = text("a" + flag * 3000)
    assert (len(flags) - len("t\n\na")) % 2 == 0 and flags.endswith(flag)
    # one "cluster" longer than the whole limit (stacked marks) is still cut, not emptied
    zalgo = text("z" + "\u0301" * 5000)
    assert len(zalgo) == MAX_TEXT


async def test_the_webhook_needs_the_secret_token(with_bot: Notifications, bot: FakeBotApi) -> None:
    for secret in (None, "wrong"):
        response = await _update(with_bot, 1, "/start x", secret=secret)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
    assert bot.sent == []


async def test_link_flow_single_use_codes_and_update_dedup(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    admin, owner = await with_bot.users("admin", "agent")
    code = await _code(with_bot, owner)
    assert (await _update(with_bot, 10, f"/start {code}")).status_code == 204
    assert bot.to(777) == [LINKED]
    (link,) = await with_bot.rows(TelegramLink)
    assert link.user_id == owner.id and link.chat_id == 777
    # the same update again (Telegram retries): nothing happens
    assert (await _update(with_bot, 10, f"/start {code}")).status_code == 204
    assert bot.to(777) == [LINKED]
    # the code is single use, even from another chat
    assert (await _update(with_bot, 11, f"/start {code}", chat=888)).status_code == 204
    assert bot.to(888) == [BAD_CODE]
    # an expired code is refused
    late = await _code(with_bot, admin)
    set_clock(with_bot.context, lambda: utcnow() + timedelta(minutes=11))
    await _update(with_bot, 12, f"/start {late}", chat=999)
    assert bot.to(999) == [BAD_CODE]
    set_clock(with_bot.context, None)

    # a linked user's notifications reach the chat
    await with_bot.rule(admin, template={"title": "Hi {{ data.title }}"}, channels=["telegram"])
    await with_bot.ping(admin, title="Fleet", owner_id=owner.id)
    await with_bot.settle()
    assert bot.to(777)[-1] == "Hi Fleet"


async def test_linking_another_users_chat_says_so_in_the_chat(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    """A group chat is one user's: a second user's /start in it unlinked the first silently
    (the answer was a plain "Linked"), so the first user never learned their notifications
    stopped coming. The answer now says the chat was another user's; relinking one's own
    chat, or a first link, still answers the plain "Linked"."""
    first, second = await with_bot.users("agent", "manager")
    assert (
        await _update(with_bot, 20, f"/start {await _code(with_bot, first)}", chat=-100)
    ).status_code == 204
    assert (
        await _update(with_bot, 21, f"/start {await _code(with_bot, first)}", chat=-100)
    ).status_code == 204
    assert bot.to(-100) == [LINKED, LINKED]  # the same user again: nothing replaced
    assert (
        await _update(with_bot, 22, f"/start {await _code(with_bot, second)}", chat=-100)
    ).status_code == 204
    said = bot.to(-100)[-1]
    assert said != LINKED and "linked to another crm2 user before" in said, said
    (link,) = await with_bot.rows(TelegramLink)
    assert (link.user_id, link.chat_id) == (second.id, -100)


async def test_a_user_without_a_linked_chat_gets_no_telegram_delivery(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    from crm2_notifications.models import Delivery

    admin, owner = await with_bot.users("admin", "agent")
    await with_bot.rule(admin, channels=["inapp", "telegram"])
    await with_bot.ping(admin, owner_id=owner.id)
    await with_bot.settle()
    assert await with_bot.rows(Delivery) == []
    assert len(await with_bot.feed(owner)) == 1 and bot.sent == []


async def test_bad_webhook_bodies_are_4xx_or_ignored(with_bot: Notifications) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    url = f"{API}/telegram/webhook"
    broken = {**headers, "content-type": "application/json"}
    assert (await with_bot.client.post(url, content=b"{", headers=broken)).status_code == 400
    huge = {"update_id": 2**70, "message": {"chat": {"id": 2**70}, "text": "/start x"}}
    for body in ({}, {"update_id": "x"}, {"update_id": 5, "message": "no"}, huge):
        assert (await with_bot.client.post(url, json=body, headers=headers)).status_code == 204


async def test_start_from_a_chat_id_beyond_64_bits_is_ignored(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    owner = await with_bot.user("agent")
    code = await _code(with_bot, owner)
    assert (await _update(with_bot, 20, f"/start {code}", chat=2**64)).status_code == 204
    assert await with_bot.rows(TelegramLink) == [] and bot.sent == []


async def test_flood_control_429_waits_retry_after_and_never_dead_letters(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    import ping_plugin
    from crm2_notifications.models import Delivery
    from crm2_notifications.service.delivery import send_due

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": {**telegram_settings(bot), "max_attempts": 2}},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    assert (await _update(n, 30, f"/start {await _code(n, owner)}")).status_code == 204
    await n.rule(admin, template={"title": "Hi {{ data.title }}"}, channels=["telegram"])
    bot.flood, bot.retry_after = 3, 600  # the bot is over Telegram's limits for a while
    now = utcnow()
    set_clock(n.context, lambda: now)
    await n.ping(admin, title="Fleet", owner_id=owner.id)
    await n.settle()
    for _ in range(3):
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "pending" and delivery.last_status_code == 429, delivery
        waited = (delivery.next_attempt_at.replace(tzinfo=now.tzinfo) - now).total_seconds()
        assert waited >= 600  # retry_after, not the shorter backoff
        now += timedelta(seconds=waited)
        await send_due(n.context, now=now)
    (delivery,) = await n.rows(Delivery)
    assert delivery.status == "delivered", delivery  # a rate limit is not a failure of it
    assert bot.to(777)[-1] == "Hi Fleet"


async def test_chat_not_found_or_bot_blocked_is_dead_at_once(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    from crm2_notifications.models import Delivery
    from crm2_notifications.service.delivery import send_due

    admin, owner = await with_bot.users("admin", "agent")
    code = await _code(with_bot, owner)
    assert (await _update(with_bot, 40, f"/start {code}")).status_code == 204
    await with_bot.rule(admin, channels=["telegram"])
    for status in (400, 403):
        bot.failing = status
        await with_bot.ping(admin, title=f"to {status}", owner_id=owner.id)
        await with_bot.settle()
    await send_due(with_bot.context, now=utcnow() + timedelta(days=30))
    rows = await with_bot.rows(Delivery)
    assert sorted((d.status, d.attempts, d.last_status_code) for d in rows) == [
        ("dead", 1, 400),
        ("dead", 1, 403),
    ]


async def test_the_bot_wide_limit_does_not_use_up_a_users_own_limit(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    import time

    import ping_plugin
    from crm2_notifications.models import Delivery
    from crm2_notifications.ratelimit import MemoryBuckets
    from crm2_notifications.service.delivery import send_due

    ping_plugin.THINGS.clear()
    settings = {
        **telegram_settings(bot),
        "rate_burst": 3,  # the user may get three at once ...
        "rate_per_minute": 1,
        "telegram_rate_per_second": 0.05,  # ... but the bot sends one per 20 s
    }
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": settings},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    skew = [0.0]
    buckets = MemoryBuckets(clock=lambda: time.monotonic() + skew[0])
    n.context.provide(MemoryBuckets, buckets)  # before the bot's first message looks at them
    admin, owner = await n.users("admin", "agent")
    assert (await _update(n, 50, f"/start {await _code(n, owner)}")).status_code == 204
    await n.rule(admin, template={"title": "{{ data.title }}"}, channels=["telegram"])
    for i in range(3):
        await n.ping(admin, title=f"n{i}", owner_id=owner.id)
    await n.settle()
    # the link's answer took the bot's token (an answer is a message of the bot too):
    # all three wait for it
    assert len(bot.to(777)) == 1
    later = utcnow()
    for _ in range(3):
        later += timedelta(seconds=21)
        skew[0] += 21
        await send_due(n.context, now=later)
    rows = await n.rows(Delivery)
    assert sorted(d.status for d in rows) == ["delivered"] * 3, [
        (d.status, d.last_error) for d in rows
    ]  # none folded into a digest: the user stayed within their own limit
    assert sorted(bot.to(777)[1:]) == ["n0", "n1", "n2"]


async def test_an_absurd_retry_after_is_capped_not_a_crash(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    from crm2_notifications.models import Delivery

    admin, owner = await with_bot.users("admin", "agent")
    code = await _code(with_bot, owner)
    assert (await _update(with_bot, 60, f"/start {code}")).status_code == 204
    await with_bot.rule(admin, channels=["telegram"])
    bot.flood, bot.retry_after = 1, 10**12  # some 31,700 years
    await with_bot.ping(admin, owner_id=owner.id)
    await with_bot.settle()
    (delivery,) = await with_bot.rows(Delivery)
    assert delivery.status == "pending" and delivery.last_status_code == 429, delivery
    waited = delivery.next_attempt_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)
    assert timedelta(0) < waited <= timedelta(days=7, minutes=1)


async def _bot_app(crm2_app_factory: Any, bot: FakeBotApi, **extra: Any) -> Notifications:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": telegram_settings(bot)},
        scheduler_enabled=False,
        **extra,
    )
    await shipped_rule(app, enabled=False)
    return Notifications(app)


async def test_a_429_pauses_the_whole_bot_until_retry_after_on_redis(
    crm2_app_factory: Any, bot: FakeBotApi, crm2_redis_url: tuple[str, str]
) -> None:
    """Telegram's flood control is the bot's: after one chat's 429 no other chat is sent
    to until ``retry_after`` has passed (a Redis key every worker reads)."""
    from crm2_notifications.models import Delivery
    from crm2_notifications.service.delivery import send_due
    from redis.asyncio import Redis

    url, prefix = crm2_redis_url
    n = await _bot_app(crm2_app_factory, bot, redis_url=url, redis_prefix=prefix)
    admin, first, second = await n.users("admin", "agent", "agent")
    assert (await _update(n, 70, f"/start {await _code(n, first)}", chat=777)).status_code == 204
    assert (await _update(n, 71, f"/start {await _code(n, second)}", chat=888)).status_code == 204
    await n.rule(admin, template={"title": "{{ data.title }}"}, channels=["telegram"])
    bot.flood, bot.retry_after = 1, 600
    now = utcnow()
    set_clock(n.context, lambda: now)
    await n.ping(admin, title="to first", owner_id=first.id)
    await n.settle()
    await n.ping(admin, title="to second", owner_id=second.id)
    await n.settle()
    sends = [p["chat_id"] for m, p in bot.calls if m == "sendMessage" and p["text"] != LINKED]
    assert sends == [777]  # the 429; nothing went to the other chat while the bot waits
    rows = {d.user_id: d for d in await n.rows(Delivery)}
    held = rows[second.id]
    assert held.status == "pending" and held.attempts == 0, held
    assert (held.next_attempt_at.replace(tzinfo=now.tzinfo) - now).total_seconds() >= 590
    redis = Redis.from_url(url)
    try:
        key = f"{prefix}notifications:rl:pause:telegram"
        assert 590_000 <= await redis.pttl(key) <= 600_000  # gone once it is over
        await redis.delete(key)  # as if the ten minutes had passed
    finally:
        await redis.aclose()
    now += timedelta(seconds=601)
    await send_due(n.context, now=now)
    assert {d.status for d in await n.rows(Delivery)} == {"delivered"}
    assert bot.to(888)[-1] == "to second" and bot.to(777)[-1] == "to first"


async def test_a_bot_pause_is_shared_and_only_ever_lengthened(
    crm2_redis_url: tuple[str, str],
) -> None:
    from crm2_notifications.ratelimit import MemoryBuckets, RedisBuckets
    from redis.asyncio import Redis

    url, prefix = crm2_redis_url
    redis = Redis.from_url(url)
    try:
        memory = MemoryBuckets()
        for one, other in ((RedisBuckets(redis, prefix), RedisBuckets(redis, prefix)),
                           (memory, memory)):  # fmt: skip
            assert await other.pause_left("pause:telegram") == 0.0
            await one.pause("pause:telegram", 600)
            assert 590 < await other.pause_left("pause:telegram") <= 600  # every worker's
            await other.pause("pause:telegram", 5)  # a shorter one does not shorten it
            assert 590 < await one.pause_left("pause:telegram") <= 600
            await other.pause("pause:telegram", 900)
            assert 890 < await one.pause_left("pause:telegram") <= 900
            assert await one.pause_left("pause:email") == 0.0
        assert 890_000 < await redis.pttl(f"{prefix}pause:telegram") <= 900_000  # then gone
    finally:
        await redis.aclose()


async def test_a_chat_that_blocked_the_bot_is_disabled_until_linked_again(
    crm2_app_factory: Any, bot: FakeBotApi
) -> None:
    """A 403 will not heal: the chat stops getting deliveries (none is even queued), the
    reason is kept and shown, and a new ``/start <code>`` brings it back."""
    from crm2_notifications.models import Delivery

    n = await _bot_app(crm2_app_factory, bot)
    admin, owner = await n.users("admin", "agent")
    assert (await _update(n, 80, f"/start {await _code(n, owner)}")).status_code == 204
    await n.rule(admin, template={"title": "{{ data.title }}"}, channels=["telegram"])
    bot.failing, bot.description = 403, "Forbidden: bot was blocked by the user"
    await n.ping(admin, title="refused", owner_id=owner.id)
    await n.settle()
    (dead,) = await n.rows(Delivery)
    assert dead.status == "dead" and dead.last_status_code == 403
    (link,) = await n.rows(TelegramLink)
    assert link.disabled_at is not None and "blocked by the user" in (link.disabled_reason or "")
    shown = await n.client.get(f"{API}/telegram", headers=owner.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["disabled_at"] and "blocked" in shown.json()["disabled_reason"]

    bot.failing = None
    calls = len(bot.calls)
    await n.ping(admin, title="not tried", owner_id=owner.id)
    await n.settle()
    assert len(await n.rows(Delivery)) == 1 and len(bot.calls) == calls  # nothing tried

    assert (await _update(n, 81, f"/start {await _code(n, owner)}")).status_code == 204
    (link,) = await n.rows(TelegramLink)
    assert link.disabled_at is None and link.disabled_reason is None
    await n.ping(admin, title="back", owner_id=owner.id)
    await n.settle()
    assert bot.to(777)[-1] == "back"
    shown = await n.client.get(f"{API}/telegram", headers=owner.headers)
    assert shown.json()["disabled_at"] is None and shown.json()["linked"] is True


async def test_seen_update_ids_and_spent_link_codes_are_pruned(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    """Every update id the webhook saw, and every link code, stayed for good: the tables
    grew with every message to the bot. Telegram gives up re-sending an update after a
    day, so ids older than ``UPDATE_KEEP`` go; a code goes once used or expired."""
    from crm2_notifications.jobs import scheduled_jobs
    from crm2_notifications.models import TelegramCode, TelegramUpdate

    owner, waiting = await with_bot.users("agent", "agent")
    assert (await _update(with_bot, 1, f"/start {await _code(with_bot, owner)}")).status_code == 204
    open_code = await _code(with_bot, waiting)
    assert len(await with_bot.rows(TelegramCode)) == 2
    later = utcnow() + timedelta(days=3)
    set_clock(with_bot.context, lambda: later)
    assert (await _update(with_bot, 2, "/start")).status_code == 204  # a fresh one stays
    (job,) = [j for j in scheduled_jobs(with_bot.context) if j.name == "digests"]
    await job.run(with_bot.context)
    assert [u.update_id for u in await with_bot.rows(TelegramUpdate)] == [2]
    assert await with_bot.rows(TelegramCode) == []  # one used, one expired
    assert (await _update(with_bot, 3, f"/start {open_code}", chat=888)).status_code == 204
    assert bot.to(888) == [BAD_CODE]


async def test_a_bot_api_trickling_its_answer_is_cut_off(
    crm2_app_factory: Any, monkeypatch: Any
) -> None:
    """httpx's timeout bounds each read: an API (or a proxy in front of it) sending a
    header line every 0.2 s held the send — a sign-in's question, the deliveries job —
    for as long as it liked. The whole call has ``BOT_TIMEOUT``; the attempt is retried."""
    import asyncio
    import contextlib

    from crm2_notifications.channels import telegram as telegram_channel
    from crm2_notifications.channels.telegram import TelegramChannel
    from crm2_notifications.testing import message_for

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read(65536)
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for i in range(40):  # 8 seconds of headers
                writer.write(f"X-Slow-{i}: yes\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.2)
        writer.close()

    monkeypatch.setattr(telegram_channel, "BOT_TIMEOUT", 1.0)
    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = {
            "telegram_bot_token": TOKEN,
            "telegram_api_base_url": f"http://127.0.0.1:{port}",
        }
        app = await crm2_app_factory(
            plugins=["notifications"], plugin_settings={"notifications": settings}
        )
        channel = TelegramChannel()
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(5):
            result = await channel.send(message_for(channel, "777"), app.context)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        server.close()
    assert not result.ok and result.retry and "within 1.0" in (result.error or ""), result


@pytest.mark.parametrize("gzipped", [False, True])
async def test_a_bot_api_answer_over_a_mebibyte_is_a_failed_call(
    crm2_app_factory: Any, gzipped: bool
) -> None:
    """The Bot API's answer was read whole: a proxy's page or a hostile endpoint could send
    any amount (or a small gzip of a huge one) to be held in memory, and a 200 of it was
    "delivered". Past ``MAX_ANSWER`` decoded bytes the call fails (retried), read no further."""
    import asyncio
    import contextlib
    import gzip

    from crm2_notifications.channels.telegram import MAX_ANSWER
    from crm2_notifications.testing import message_for

    big = b'{"ok": true, "result": {"text": "' + b"x" * (MAX_ANSWER + 10) + b'"}}'
    body = gzip.compress(big) if gzipped else big
    encoding = b"Content-Encoding: gzip\r\n" if gzipped else b""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + encoding
            writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = {
            "telegram_bot_token": TOKEN,
            "telegram_api_base_url": f"http://127.0.0.1:{port}",
        }
        app = await crm2_app_factory(
            plugins=["notifications"], plugin_settings={"notifications": settings}
        )
        channel = TelegramChannel()
        result = await channel.send(message_for(channel, "777"), app.context)
    finally:
        server.close()
    assert not result.ok and result.retry, result
    assert f"over {MAX_ANSWER} bytes" in (result.error or ""), result


async def test_a_chat_repeating_start_cannot_use_up_the_bots_rate(
    with_bot: Notifications, bot: FakeBotApi
) -> None:
    """Anyone may write to the bot: a stranger's "/start" or wrong codes get a few answers,
    then none, so they cannot spend the bot-wide bucket deliveries and sign-in questions
    need. A right code from the same chat is still answered."""
    for update_id in range(100, 110):
        assert (await _update(with_bot, update_id, "/start")).status_code == 204
    for update_id in range(110, 115):
        assert (await _update(with_bot, update_id, "/start wrong", chat=555)).status_code == 204
    assert len(bot.to(777)) == 3 and len(bot.to(555)) == 3
    owner = await with_bot.user("agent")
    code = await _code(with_bot, owner)
    assert (await _update(with_bot, 120, f"/start {code}")).status_code == 204
    assert bot.to(777)[-1] == LINKED
