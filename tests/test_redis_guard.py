"""``RedisGuard`` as a plugin uses it (``crm2_core.api``): the back-off's start and
ceiling are the user's, and the outage is logged once, on the user's logger. Redis is
a port nothing listens on, or the shared one through the core's proxy."""

from __future__ import annotations

import logging
import socket

import pytest
from redis.asyncio import Redis

from crm2_core.api import RedisGuard, RedisUnavailable
from crm2_core.redis_guard import OUTAGE_RETRY_MAX
from crm2_core.testing.redis_proxy import flaky_redis


def closed_port() -> int:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def waits(guard: RedisGuard, calls: int) -> list[float]:
    redis = Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    found = []
    try:
        for _ in range(calls):
            with pytest.raises(RedisUnavailable) as down:
                await guard.call(lambda: redis.get("x"))
            found.append(down.value.retry_after)
    finally:
        await redis.aclose()
    return found


async def test_the_back_off_doubles_up_to_the_ceiling_given() -> None:
    guard = RedisGuard("test", retry_base=2.0, retry_max=12.0)
    assert await waits(guard, 5) == [2.0, 4.0, 8.0, 12.0, 12.0]


async def test_without_a_ceiling_given_the_core_one_holds() -> None:
    found = await waits(RedisGuard("test"), 6)
    assert found == [5.0, 10.0, 20.0, 40.0, OUTAGE_RETRY_MAX, OUTAGE_RETRY_MAX]
    assert OUTAGE_RETRY_MAX == 60.0


async def test_the_outage_is_logged_once_on_the_users_logger_and_once_when_back(
    crm2_redis_url: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    guard = RedisGuard("a plugin's cache", logger=logging.getLogger("crm2_someplugin.cache"))
    url, prefix = crm2_redis_url
    async with flaky_redis(url) as proxy:
        redis = Redis.from_url(proxy.url)
        try:
            proxy.set("down")
            for _ in range(3):
                with pytest.raises(RedisUnavailable):
                    await guard.call(lambda: redis.get(f"{prefix}x"))
            proxy.set("up")
            assert await guard.call(lambda: redis.get(f"{prefix}x")) is None
        finally:
            await redis.aclose()
    lines = [(r.name, r.getMessage()) for r in caplog.records]
    assert [name for name, _ in lines] == ["crm2_someplugin.cache"] * 2, lines
    assert lines[0][1].startswith("a plugin's cache: Redis is not answering")
    assert lines[1][1] == "a plugin's cache: Redis answers again after 3 failed calls"
    assert guard.failures == 0 and not guard.backing_off()
