"""The request rate limit when its Redis does not answer: requests are counted in this
process (the limit holds, the API stays up: no 500, no 503 on every request) until
Redis answers again; a hung Redis costs a request at most the timeout. Redis is reached
through a proxy on 127.0.0.1 (the shared Redis is never stopped) or a closed port."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

from crm2_core.redis_guard import REDIS_TIMEOUT
from crm2_core.testing.redis_proxy import flaky_redis

ME = "/api/v1/auth/me"
PER_MINUTE = 6  # one request per 10 s: no refill within a test
DOWN = "Redis is not answering"
BACK = "Redis answers again"


def closed_port() -> int:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def logged(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def test_a_closed_redis_port_limits_in_process_and_logs_once(
    crm2_app_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crm2_core.redis_guard")
    app = await crm2_app_factory(
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        rate_limit_per_minute=PER_MINUTE,
        rate_limit_burst=3,
    )
    # anonymous: counted against the client IP (a sign-in needs the login throttle's Redis)
    answers = [(await app.client.get(ME)) for _ in range(4)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429], answers[-1].text
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60 // PER_MINUTE + 1
    assert len(logged(caplog, DOWN)) == 1


async def test_a_hung_redis_costs_one_timeout_then_redis_is_used_again_once_back(
    crm2_app_factory: Any,
    crm2_redis_url: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crm2_core.redis_guard import RedisGuard

    caplog.set_level(logging.WARNING, logger="crm2_core.redis_guard")
    url, prefix = crm2_redis_url
    async with flaky_redis(url) as proxy:
        app = await crm2_app_factory(
            redis_url=proxy.url,
            redis_prefix=prefix,
            rate_limit_per_minute=PER_MINUTE,
            rate_limit_burst=50,
        )
        headers = await app.login("agent")
        assert (await app.client.get(ME, headers=headers)).status_code == 200
        proxy.set("hung")
        started = time.monotonic()
        for _ in range(5):  # the first waits the timeout, the rest skip Redis (back-off)
            assert (await app.client.get(ME, headers=headers)).status_code == 200
        assert time.monotonic() - started < REDIS_TIMEOUT + 5
        assert len(logged(caplog, DOWN)) == 1

        proxy.set("up")
        monkeypatch.setattr(RedisGuard, "backing_off", lambda self: False)  # back-off over
        assert (await app.client.get(ME, headers=headers)).status_code == 200
        assert len(logged(caplog, BACK)) == 1
