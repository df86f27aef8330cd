"""The Redis subscription of a serving process notices a Redis that stops answering.

A Redis that accepts and never answers (paused, or a network dropping packets
without a reset) used to leave the subscription waiting forever: live events then
came from the log poll only, and nothing said so. Redis is reached through a proxy
on 127.0.0.1; the shared Redis is never stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
from conftest import ProbeFactory, Serve
from redis.asyncio import Redis
from sse_helpers import EventStream, event_ids, post_item
from test_streams_hub import CHANNEL, FakeLog, drain, envelope

from crm2_core.events.envelope import Envelope
from crm2_core.redis_guard import REDIS_TIMEOUT
from crm2_core.streams.fanout import PING_SECONDS, RedisSubscriber, pubsub_channel
from crm2_core.streams.hub import Hub, Subscription
from crm2_core.testing.redis_proxy import flaky_redis

# a stalled connection is noticed within a PING's interval and its answer's wait
NOTICED_WITHIN = PING_SECONDS + REDIS_TIMEOUT + 2.0


async def _until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not {what} within {within}s"
        await asyncio.sleep(0.05)


async def _received(subscription: Subscription, positions: list[int], within: float) -> None:
    got: list[int] = []
    deadline = time.monotonic() + within
    while got != positions:
        assert time.monotonic() < deadline, f"got {got}, expected {positions}"
        got += await drain(subscription)
        await asyncio.sleep(0.05)


async def _publish(redis: Redis, prefix: str, events: list[Envelope]) -> None:
    payload = json.dumps([e.model_dump(mode="json") for e in events])
    await redis.publish(pubsub_channel(prefix), payload)


async def test_a_stalled_subscription_is_noticed_logged_once_and_resubscribed(
    crm2_redis_url: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crm2_core.streams.fanout")
    url, prefix = crm2_redis_url
    log = FakeLog(top=0)
    hub = Hub(log.source(), poll_seconds=60)  # no poll within the test: Redis only
    await hub.ready()
    subscription, _ = hub.subscribe(CHANNEL, limit=100)
    direct = Redis.from_url(url)
    async with flaky_redis(url) as proxy:
        through_proxy = Redis.from_url(proxy.url)
        subscriber = RedisSubscriber(through_proxy, prefix, hub)
        try:
            async with asyncio.timeout(60):  # a hang fails the test, never holds it
                subscriber.start()
                await asyncio.wait_for(subscriber.subscribed.wait(), 5)
                log.events.append(envelope(1))
                await _publish(direct, prefix, log.events[0:1])
                await _received(subscription, [1], within=5)

                proxy.set("stalled")  # the connection stays open; nothing answers any more
                stalled_at = time.monotonic()
                await _until(lambda: not subscriber.subscribed.is_set(), NOTICED_WITHIN, "noticed")
                print(f"noticed {time.monotonic() - stalled_at:.1f}s after the stall")
                log.events.append(envelope(2))
                await _publish(direct, prefix, log.events[1:2])  # lost: nobody subscribed
                await asyncio.sleep(2 * REDIS_TIMEOUT)  # retries fail while it lasts

                proxy.set("up")
                await asyncio.wait_for(subscriber.subscribed.wait(), 15)
                log.events.append(envelope(3))
                await _publish(direct, prefix, log.events[2:3])
                # the hole (2) is read back from the log before 3 goes out
                await _received(subscription, [2, 3], within=5)
        finally:
            await subscriber.close()
            await through_proxy.aclose()
            await direct.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "no Redis subscription" in m]) == 1, messages
    assert len([m for m in messages if "subscribed to Redis again" in m]) == 1, messages


async def test_the_app_serves_at_once_while_redis_hangs(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient, crm2_redis_url: tuple[str, str]
) -> None:
    """Start-up does not wait for the subscription; events come from the log poll meanwhile."""
    url, prefix = crm2_redis_url
    async with flaky_redis(url) as proxy:
        app = await probe_app(redis_url=proxy.url, redis_prefix=prefix, relay_interval_seconds=0.2)
        headers = await app.login("admin")  # sign-ins need Redis (the login throttle)
        proxy.set("hung")  # accepted, never answered: the subscription cannot start
        streams = app.context.streams
        await streams.close()
        started = time.monotonic()
        await streams.start()  # what the application's start-up awaits
        took = time.monotonic() - started
        assert took < 1.0, f"the streams' start-up waited {took:.1f}s on a hung Redis"
        server = await serve(app)
        async with asyncio.timeout(30):
            async with sse.stream(
                "GET", f"{server.url}/api/v1/streams/probe", headers=headers
            ) as response:
                assert response.status_code == 200
                stream = EventStream(response)
                assert (await stream.next()).event == "connected"
                sent = await post_item(app, headers, 1)
                got = await stream.collect(lambda got: len(got) >= 1, within=10)
        assert event_ids(got) == [sent]
