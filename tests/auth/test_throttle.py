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


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The delays' clock stands still: the first wait after the free failures is one
    second, which a loaded machine's password hashing can use up before the next attempt
    (the attempt then went ahead: a 200 where the test expects 429)."""
    from datetime import UTC, datetime

    import crm2_core.auth.delays

    now = datetime.now(UTC)
    monkeypatch.setattr(crm2_core.auth.delays, "utcnow", lambda: now)


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


def assert_429(response: Any, at_most: int = 901) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm2:problem:too-many-requests"
    assert 1 <= int(response.headers["retry-after"]) <= at_most


def from_address(address: str) -> dict[str, str]:
    """What a trusted proxy in front of crm2 says about the client."""
    return {"X-Forwarded-For": address}


async def attempt_from(app: Crm2TestApp, address: str, password: str, email: str = EMAIL) -> Any:
    return await app.client.post(
        LOGIN, json={"email": email, "password": password}, headers=from_address(address)
    )


# -- progressive delays per (account, address) ------------------------------------------


@pytest.mark.usefixtures("still_clock")
async def test_failures_make_the_next_attempt_wait_even_with_the_right_password(
    make_app: MakeApp,
) -> None:
    app = await make_app(login_free_failures=3)
    await app.create_user("agent", email=EMAIL)
    for _ in range(3):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert_429(await attempt(app, PASSWORD), at_most=1)


async def test_the_wait_doubles_and_stops_at_the_cap(crm2_app_factory: Any) -> None:
    from crm2_core.auth.config import AuthSettings
    from crm2_core.auth.delays import delay_after

    settings = AuthSettings(login_free_failures=3, login_delay_max_seconds=60)
    waits = [delay_after(n, settings) for n in range(1, 12)]
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.usefixtures("still_clock")
async def test_an_attacker_cannot_lock_out_the_owner_signing_in_elsewhere(
    crm2_app_factory: Any,
) -> None:
    app = await crm2_app_factory(
        trusted_proxies="127.0.0.1", plugin_settings={"auth": {"login_free_failures": 2}}
    )
    await app.create_user("admin", email=EMAIL)
    for _ in range(2):
        assert (await attempt_from(app, "198.51.100.66", "guess")).status_code == 401
    assert_429(await attempt_from(app, "198.51.100.66", "guess"))
    assert (await attempt_from(app, "203.0.113.10", PASSWORD)).status_code == 200


@pytest.mark.usefixtures("still_clock")
async def test_the_account_waits_are_counted_case_insensitively(make_app: MakeApp) -> None:
    app = await make_app(login_free_failures=3)
    await app.create_user("agent", email=EMAIL)
    for email in ("Throttled@example.com", "THROTTLED@EXAMPLE.COM", " throttled@example.com"):
        assert (await attempt(app, "wrong password", email)).status_code == 401
    assert_429(await attempt(app, PASSWORD))


async def test_an_address_too_long_once_lowercased_is_401_and_recorded_nowhere(
    crm2: Crm2TestApp,
) -> None:
    from sqlalchemy import func, select

    from crm2_core.auth.models import LoginFailure

    # 320 characters as typed, 640 once lowercased ("İ" becomes "i" and a combining dot)
    response = await attempt(crm2, "guess", "\u0130" * 320)
    assert response.status_code == 401, response.text
    assert response.json()["type"] == "urn:crm2:problem:invalid-credentials"
    async with crm2.context.session_factory() as session:
        rows = (await session.execute(select(func.count()).select_from(LoginFailure))).scalar()
    assert rows == 0


async def test_waits_do_not_touch_other_accounts(make_app: MakeApp) -> None:
    app = await make_app(login_free_failures=3)
    await app.create_user("agent", email=EMAIL)
    await app.create_user("agent", email="other@example.com")
    for _ in range(4):
        await attempt(app, "wrong password")
    assert (await attempt(app, PASSWORD, "other@example.com")).status_code == 200


async def test_successful_login_forgets_the_streak(make_app: MakeApp) -> None:
    app = await make_app(login_free_failures=3)
    await app.create_user("agent", email=EMAIL)
    for _ in range(2):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert (await attempt(app, PASSWORD)).status_code == 200
    for _ in range(2):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert (await attempt(app, PASSWORD)).status_code == 200


@pytest.mark.usefixtures("still_clock")
async def test_parallel_wrong_logins_queue_behind_the_delay(make_app: MakeApp) -> None:
    app = await make_app(login_free_failures=5)
    await app.create_user("agent", email=EMAIL)
    responses = await asyncio.gather(*(attempt(app, "wrong password") for _ in range(20)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= 5, statuses
    assert statuses.count(429) >= 15, statuses


@pytest.mark.usefixtures("still_clock")
async def test_waits_are_shared_by_two_app_instances(crm2_app_factory: Any) -> None:
    settings = {"auth": {"login_free_failures": 3}}
    first = await crm2_app_factory(plugin_settings=settings)
    second = await crm2_app_factory(plugin_settings=settings)
    await first.create_user("agent", email=EMAIL)
    for app in (first, second, first):
        assert (await attempt(app, "wrong password")).status_code == 401
    assert_429(await attempt(second, PASSWORD))


# -- the per-address failure limit ---------------------------------------------------------


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


async def test_forwarded_for_from_an_untrusted_peer_changes_nothing(make_app: MakeApp) -> None:
    """No trusted proxy configured (the default): a made-up X-Forwarded-For per attempt
    still counts against the connection's own address."""
    app = await make_app(login_max_failures_per_ip=3)
    for n in range(3):
        response = await attempt_from(app, f"198.51.100.{n}", "wrong", f"g{n}@example.com")
        assert response.status_code == 401
    assert_429(await attempt_from(app, "198.51.100.99", "wrong", "g9@example.com"))


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    crm2_app_factory: Any,
) -> None:
    app = await crm2_app_factory(
        trusted_proxies="127.0.0.0/8",
        plugin_settings={"auth": {"login_max_failures_per_ip": 3}},
    )
    for n in range(3):
        response = await attempt_from(app, "198.51.100.7", "wrong", f"g{n}@example.com")
        assert response.status_code == 401
    assert_429(await attempt_from(app, "198.51.100.7", "wrong", "g9@example.com"))
    # another client behind the same proxy is not blocked
    other = await attempt_from(app, "198.51.100.8", "wrong", "g9@example.com")
    assert other.status_code == 401
    # a spoofed hop the client prepended is not believed: the proxy's own append counts
    spoofed = await attempt_from(app, "10.9.9.9, 198.51.100.7", "wrong", "g8@example.com")
    assert_429(spoofed)


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
        assert len(keys) == 1  # the IP's
        for key in keys:
            assert b"127.0.0.1" not in key  # hashed
            assert 0 < await redis.ttl(key) <= 900
    finally:
        await redis.aclose()


# -- the operator's way out ------------------------------------------------------------------


@pytest.mark.usefixtures("still_clock")
async def test_unlock_lets_the_address_try_again_at_once(make_app: MakeApp) -> None:
    app = await make_app(login_free_failures=2)
    await app.create_user("agent", email=EMAIL)
    for _ in range(2):
        await attempt(app, "wrong password")
    assert_429(await attempt(app, PASSWORD))
    assert await app.auth.delays.unlock(EMAIL) == 1
    assert (await attempt(app, PASSWORD)).status_code == 200


async def test_the_hourly_job_forgets_streaks_older_than_the_window(crm2: Crm2TestApp) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from crm2_core.auth.models import LoginFailure
    from crm2_core.db import utcnow
    from crm2_core.scheduler import collect_jobs, run_job

    old = utcnow() - timedelta(hours=2)
    async with crm2.context.session_factory() as session:
        session.add(
            LoginFailure(
                account="old@example.com",
                address="a",
                failures=5,
                last_failure_at=old,
                blocked_until=old,
            )
        )
        session.add(LoginFailure(account="new@example.com", address="a", failures=5))
        await session.commit()
    jobs = collect_jobs(crm2.context)
    await run_job(crm2.context, "auth.forget_login_failures", jobs["auth.forget_login_failures"])
    async with crm2.context.session_factory() as session:
        left = (await session.execute(select(LoginFailure.account))).scalars().all()
    assert left == ["new@example.com"]
