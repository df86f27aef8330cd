"""Request rate limits (CRM2_RATE_LIMIT_*): GCRA per principal or client IP, memory or Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from crm2_core.http.ratelimit import Gcra
from crm2_core.testing import Crm2TestApp

ME = "/api/v1/auth/me"
USERS = "/api/v1/auth/users"
MakeApp = Callable[..., Awaitable[Crm2TestApp]]


@pytest.fixture(params=["memory", "redis"])
def make_app(
    request: pytest.FixtureRequest, crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> MakeApp:
    url, prefix = crm2_redis_url

    async def make(per_minute: int = 60, burst: int = 3) -> Crm2TestApp:
        extra = {"redis_url": url, "redis_prefix": prefix} if request.param == "redis" else {}
        app: Crm2TestApp = await crm2_app_factory(
            rate_limit_per_minute=per_minute, rate_limit_burst=burst, **extra
        )
        return app

    return make


# One request per 10 s: a refill between a test's requests would need a 10 s stall, which a
# loaded CI machine does not reach (at 60 per minute a 1 s stall let a request through).
PER_MINUTE = 6


def assert_429(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:crm2:problem:too-many-requests"
    assert "rate limit" in body["detail"]
    assert 1 <= int(response.headers["retry-after"]) <= 60 // PER_MINUTE + 1
    assert response.headers["ratelimit-remaining"] == "0"


async def test_each_principal_gets_its_burst_then_429(make_app: MakeApp) -> None:
    app = await make_app(per_minute=PER_MINUTE, burst=3)
    alice, bob = await app.login("admin"), await app.login("admin")
    remaining = []
    for _ in range(3):
        answer = await app.client.get(ME, headers=alice)
        assert answer.status_code == 200, answer.text
        assert answer.headers["ratelimit-limit"] == "3"
        remaining.append(int(answer.headers["ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    assert_429(await app.client.get(ME, headers=alice))
    assert (await app.client.get(ME, headers=bob)).status_code == 200  # a bucket of its own


async def test_a_refused_request_changes_nothing(make_app: MakeApp) -> None:
    app = await make_app(per_minute=PER_MINUTE, burst=2)
    admin, other = await app.login("admin"), await app.login("admin")
    for _ in range(2):
        assert (await app.client.get(ME, headers=admin)).status_code == 200
    body = {"email": "limited@example.com", "password": "a-long-enough-password", "roles": []}
    assert_429(await app.client.post(USERS, json=body, headers=admin))
    users = (await app.client.get(USERS, params={"limit": 100}, headers=other)).json()
    assert "limited@example.com" not in {u["email"] for u in users["items"]}


async def test_anonymous_and_bad_credentials_count_against_the_client_ip(
    make_app: MakeApp,
) -> None:
    app = await make_app(per_minute=PER_MINUTE, burst=2)
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await app.client.get(ME, headers=bad)).status_code == 401
    assert (await app.client.get(ME)).status_code == 401
    assert_429(await app.client.get(ME, headers=bad))


async def test_health_probes_are_never_limited(make_app: MakeApp) -> None:
    app = await make_app(per_minute=PER_MINUTE, burst=1)
    for _ in range(5):
        answer = await app.client.get("/healthz")
        assert answer.status_code == 200
        assert "ratelimit-limit" not in answer.headers


async def test_without_a_limit_there_are_no_headers(crm2: Crm2TestApp) -> None:
    answer = await crm2.client.get(ME, headers=await crm2.login())
    assert answer.status_code == 200
    assert "ratelimit-limit" not in answer.headers


async def test_redis_bucket_is_shared_by_two_processes(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> None:
    url, prefix = crm2_redis_url
    settings = {"rate_limit_per_minute": PER_MINUTE, "rate_limit_burst": 3, "redis_prefix": prefix}
    first = await crm2_app_factory(redis_url=url, **settings)
    second = await crm2_app_factory(redis_url=url, **settings)
    headers = await first.login("admin")  # one IP-bucket slot on the login
    for app in (first, second, first):
        assert (await app.client.get(ME, headers=headers)).status_code == 200
    assert_429(await second.client.get(ME, headers=headers))

    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}ratelimit:*")]
        assert keys, "the buckets live under the configured prefix"
        ttls = [await redis.pttl(k) for k in keys]
        assert all(ttl > 0 for ttl in ttls), "every bucket expires"
    finally:
        await redis.aclose()


def test_gcra_refills_at_the_rate_and_never_beyond_the_burst() -> None:
    gcra = Gcra(per_minute=60, burst=3)  # one request per second, three at once
    tat = None
    for expected_remaining in (2, 1, 0):
        decision, tat = gcra.decide(0.0, tat)
        assert decision.allowed and decision.remaining == expected_remaining
    refused, stored = gcra.decide(0.0, tat)
    assert not refused.allowed and stored is None and refused.retry_after_ms == 1000
    later, tat = gcra.decide(1000.0, tat)  # one interval later: exactly one more
    assert later.allowed and later.remaining == 0
    idle, _ = gcra.decide(1_000_000.0, tat)  # a long idle time refills only up to the burst
    assert idle.allowed and idle.remaining == 2
