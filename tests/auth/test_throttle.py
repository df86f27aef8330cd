"""Login throttling per account and per IP, in-process and in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from crm2_core.testing import Crm2TestApp

LOGIN = "/api/v1/auth/login"
PASSWORD = "correct horse battery staple"
EMAIL = "throttled@example.com"

MakeApp = Callable[..., Awaitable[Crm2TestApp]]


@pytest.fixture(params=["memory", "redis"])
def make_app(
    request: pytest.FixtureRequest, crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> MakeApp:
    """Build apps with the given auth settings; the ``redis`` variant shares one key prefix."""
    url, prefix = crm2_redis_url

    async def make(**auth: Any) -> Crm2TestApp:
        extra = {"redis_url": url, "redis_prefix": prefix} if request.param == "redis" else {}
        app: Crm2TestApp = await crm2_app_factory(plugin_settings={"auth": auth}, **extra)
        return app

    return make


async def attempt(app: Crm2TestApp, password: str, email: str = EMAIL) -> Any:
    return await app.client.post(LOGIN, json={"email": email, "password": password})


def assert_429(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm2:problem:too-many-requests"
    assert 1 <= int(response.headers["retry-after"]) <= 901


async def test_account_limit_blocks_even_the_right_password(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_account=3)
    await app.create_user("agent", email=EMAIL)
    for _ in range(3):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert_429(await attempt(app, PASSWORD))


async def test_account_limit_counts_the_address_case_insensitively(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_account=3)
    await app.create_user("agent", email=EMAIL)
    for email in ("Throttled@example.com", "THROTTLED@EXAMPLE.COM", " throttled@example.com"):
        assert (await attempt(app, "wrong password", email)).status_code == 401
    assert_429(await attempt(app, PASSWORD))


async def test_account_limit_does_not_block_other_accounts(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_account=3)
    await app.create_user("agent", email=EMAIL)
    await app.create_user("agent", email="other@example.com")
    for _ in range(4):
        await attempt(app, "wrong password")
    assert (await attempt(app, PASSWORD, "other@example.com")).status_code == 200


async def test_successful_login_resets_the_account_counter(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_account=3)
    await app.create_user("agent", email=EMAIL)
    for _ in range(2):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert (await attempt(app, PASSWORD)).status_code == 200
    for _ in range(3):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert_429(await attempt(app, PASSWORD))


async def test_ip_limit_blocks_after_failures_on_many_accounts(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_ip=3)
    await app.create_user("agent", email=EMAIL)
    for n in range(3):
        assert (await attempt(app, "wrong password", f"guess{n}@example.com")).status_code == 401
    assert_429(await attempt(app, PASSWORD))


async def test_ip_limit_does_not_count_successful_logins(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_ip=3)
    await app.create_user("agent", email=EMAIL)
    for _ in range(6):
        assert (await attempt(app, PASSWORD)).status_code == 200


async def test_parallel_wrong_logins_never_overshoot_the_limit(make_app: MakeApp) -> None:
    app = await make_app(login_max_failures_per_account=5)
    await app.create_user("agent", email=EMAIL)
    responses = await asyncio.gather(*(attempt(app, "wrong password") for _ in range(20)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= 5, statuses
    assert statuses.count(429) >= 15, statuses


async def test_redis_counter_is_shared_by_two_app_instances(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> None:
    url, prefix = crm2_redis_url
    settings = {"auth": {"login_max_failures_per_account": 3}}
    first = await crm2_app_factory(plugin_settings=settings, redis_url=url, redis_prefix=prefix)
    second = await crm2_app_factory(plugin_settings=settings, redis_url=url, redis_prefix=prefix)
    await first.create_user("agent", email=EMAIL)
    for app in (first, second, first):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert_429(await attempt(second, PASSWORD))


async def test_redis_counter_lives_under_the_configured_prefix(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> None:
    from redis.asyncio import Redis

    url, prefix = crm2_redis_url
    app = await crm2_app_factory(redis_url=url, redis_prefix=prefix)
    await attempt(app, "wrong password", "nobody@example.com")
    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(match=prefix + "login:*")]
        assert len(keys) == 2  # the account's and the IP's
        for key in keys:
            assert b"nobody" not in key  # hashed, no e-mail addresses in Redis
            assert 0 < await redis.ttl(key) <= 900
    finally:
        await redis.aclose()


async def test_in_process_counters_are_per_instance(crm2_app_factory: Any) -> None:
    settings = {"auth": {"login_max_failures_per_account": 3}}
    first = await crm2_app_factory(plugin_settings=settings)
    second = await crm2_app_factory(plugin_settings=settings)
    await first.create_user("agent", email=EMAIL)
    for _ in range(3):
        await attempt(first, "wrong password")
    assert_429(await attempt(first, PASSWORD))
    assert (await attempt(second, PASSWORD)).status_code == 200
