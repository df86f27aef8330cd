"""Scenario 9: scenario 1's request with the Redis rate limiter on vs off.

Both sides are crm2 on the same database and Redis; the limiter side sets
``CRM2_RATE_LIMIT_PER_MINUTE`` high enough that nothing is refused, so the ratio is
the limiter's own cost: one EVALSHA round trip to Redis per request.
"""

from __future__ import annotations

from harness import REDIS_URL, Envs, Metric, Profile, running

from scenarios.s1_read import S1_PATH, compare_get, read_metrics

NEVER_REFUSED = str(10**9)


def scenario_9(envs: Envs, profile: Profile) -> list[Metric]:
    """req/s with the limiter on / off (target ≥ 0.85), CPU/req and latency alongside."""
    metrics = read_metrics(f"9 rate limiter on/off, GET {S1_PATH}", 0.85)
    crm2 = envs.get()
    redis = {"CRM2_REDIS_URL": REDIS_URL}
    limited = {**redis, "CRM2_RATE_LIMIT_PER_MINUTE": NEVER_REFUSED,
               "CRM2_RATE_LIMIT_BURST": NEVER_REFUSED}  # fmt: skip
    with running(crm2.serve(**limited), crm2.serve(**redis)) as (on, off):
        headers = crm2.bearer(off.url)
        variants = {"limiter on": (on, on.url), "limiter off": (off, off.url)}
        compare_get("s9", variants, S1_PATH, headers, profile, *metrics)
    return list(metrics)
