"""The fan-out's PUBLISH while Redis hangs: bounded in time, then skipped during the
back-off, logged once, so the relay (which awaits it) is never held up. Redis is
reached through a proxy on 127.0.0.1 that stops answering; the shared Redis is never
stopped."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from crm2_core.redis_guard import REDIS_TIMEOUT
from crm2_core.streams.fanout import RedisPublisher
from crm2_core.testing.redis_proxy import flaky_redis


class Event:
    """Stands for an envelope: the publisher only dumps it."""

    def model_dump(self, mode: str) -> dict[str, Any]:
        return {"mode": mode}


async def test_a_hung_redis_holds_the_relay_at_most_one_timeout_and_is_logged_once(
    crm2_redis_url: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crm2_core.redis_guard")
    url, prefix = crm2_redis_url
    batch: Any = [Event()]
    async with flaky_redis(url) as proxy:
        redis = Redis.from_url(proxy.url)
        try:
            publisher = RedisPublisher(redis, prefix)
            proxy.set("hung")  # before the first connection: it is accepted, never answered
            started = time.monotonic()
            for _ in range(3):  # the first waits the timeout, the rest are skipped
                await publisher(batch)
            assert time.monotonic() - started < REDIS_TIMEOUT + 3
        finally:
            await redis.aclose()
    logged = [r for r in caplog.records if "Redis is not answering" in r.getMessage()]
    assert len(logged) == 1
