"""The login throttle when its Redis does not answer: the sign-in is refused with 503
and Retry-After (fail closed: an attempt it cannot count is not let through), never a
500 nor a wait as long as the client's; the outage is logged once when it starts and
once when Redis is back. Redis is reached through a proxy on 127.0.0.1 (the shared
Redis is never stopped) or on a port nothing listens on."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

from crm2_core.redis_guard import REDIS_TIMEOUT
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_core.testing.redis_proxy import flaky_redis

LOGIN = "/api/v1/auth/login"
PASSWORD = "correct horse battery staple"
EMAIL = "redis-down@example.com"
DOWN = "Redis is not answering"
BACK = "Redis answers again"


def closed_port() -> int:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def attempt(app: Crm2TestApp, password: str = PASSWORD) -> Any:
    return await app.client.post(LOGIN, json={"email": EMAIL, "password": password})


def assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm2:problem:login-throttle-unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 60


def logged(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def test_a_closed_redis_port_refuses_sign_ins_with_503_logged_once(
    crm2_app_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crm2_core.redis_guard")
    app = await crm2_app_factory(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    await app.create_user("agent", email=EMAIL)
    for password in (PASSWORD, "wrong password", PASSWORD):
        assert_503(await attempt(app, password))
    assert len(logged(caplog, DOWN)) == 1


async def test_sign_ins_work_again_once_redis_is_back_and_that_is_logged(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crm2_core.redis_guard")
    url, prefix = crm2_redis_url
    async with flaky_redis(url) as proxy:
        app = await crm2_app_factory(redis_url=proxy.url, redis_prefix=prefix)
        await app.create_user("agent", email=EMAIL)
        assert (await attempt(app)).status_code == 200
        proxy.set("down")
        assert_503(await attempt(app))
        assert_503(await attempt(app, "wrong password"))
        proxy.set("up")
        assert (await attempt(app, "wrong password")).status_code == 401  # counted again
        assert (await attempt(app)).status_code == 200
    assert len(logged(caplog, DOWN)) == 1
    assert len(logged(caplog, BACK)) == 1


async def test_a_hung_redis_is_a_503_within_the_timeout(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> None:
    url, prefix = crm2_redis_url
    async with flaky_redis(url) as proxy:
        app = await crm2_app_factory(redis_url=proxy.url, redis_prefix=prefix)
        await app.create_user("agent", email=EMAIL)
        proxy.set("hung")
        started = time.monotonic()
        assert_503(await attempt(app))
        assert time.monotonic() - started < REDIS_TIMEOUT + 5  # not the client's timeout


async def test_changing_ones_own_password_is_a_503_and_changes_nothing_while_redis_is_down(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> None:
    url, prefix = crm2_redis_url
    async with flaky_redis(url) as proxy:
        app = await crm2_app_factory(redis_url=proxy.url, redis_prefix=prefix)
        admin = await app.user("admin")
        path = f"/api/v1/auth/users/{admin.id}"
        etag = (await app.client.get(path, headers=admin.headers)).headers["etag"]
        proxy.set("down")
        response = await app.client.patch(
            path,
            json={"password": "a brand new passphrase", "current_password": TEST_PASSWORD},
            headers={**admin.headers, "If-Match": etag},
        )
        assert_503(response)
        assert (await app.client.get(path, headers=admin.headers)).headers["etag"] == etag
