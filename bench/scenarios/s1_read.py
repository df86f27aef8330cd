"""Scenario 1: an authenticated GET of a small JSON resource through the full app.

Baselines: a bare Starlette route answering the exact bytes crm2 answered, and (for
``/auth/me``, the issue's "1 vs raw") ``raw_asyncpg_me.py``: bare Starlette verifying
the same JWT with PyJWT and sending the same query through asyncpg, answering the
same JSON. The crm2 side runs every installed plugin on PostgreSQL. ``compare_get`` is shared with
scenario 9 (the same request with and without the Redis rate limiter).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from harness import (
    JWT_SECRET,
    USER_PASSWORD,
    Crm2Env,
    Envs,
    Metric,
    Profile,
    Server,
    log,
    measure_http,
    measure_open,
    rounds,
    running,
    uvicorn_app,
)  # fmt: skip

S1_PATH = "/api/v1/auth/me"
OPEN_RATE_CAP = 400.0  # requests/s of the open-loop (p99) runs


def compare_get(
    label: str,
    variants: dict[str, tuple[Server, str]],
    path: str,
    headers: dict[str, str],
    profile: Profile,
    rps: Metric,
    cpu: Metric,
    p50: Metric,
    p99: Metric,
) -> None:
    """Interleave closed-loop (req/s, CPU/req, p50) and open-loop (p99) runs of one GET.

    ``variants`` holds exactly two entries, crm2 side first and baseline second.
    The open-loop rate is half the crm2 side's warm-up req/s (at most ``OPEN_RATE_CAP``),
    so neither side saturates.
    """
    (a_name, _), (b_name, _) = variants.items()
    open_rate: float | None = None
    for number, measured in rounds(profile):
        got: dict[str, dict[str, Any]] = {}
        for variant, (server, url) in variants.items():  # A B, every round
            closed = measure_http(server, "closed", url + path, profile.closed_s,
                                  connections=profile.connections, client="raw",
                                  headers=headers)  # fmt: skip
            if open_rate is None:
                # capped: past ~500/s the httpx open-loop client itself falls behind on
                # a quiet 2-core machine and would charge its own queueing to both sides
                open_rate = min(OPEN_RATE_CAP, max(10.0, round(closed["rps"] * 0.5)))
                p99.name = f"p99 open-loop @{open_rate:g}/s"
            opened = measure_open(server, url + path, profile, measured, open_rate,
                                  headers=headers)  # fmt: skip
            got[variant] = {"closed": closed, "open": opened}
            if closed["errors"] > 0.01 * closed["ok"]:  # a wrong answer, not a slow one
                raise RuntimeError(f"{variant}: {closed['errors']} failed {closed['statuses']}")
            log(f"{label} round {number} {variant}: {closed['rps']:.0f} req/s, "
                f"{closed['cpu_ms_per_req'] or 0:.2f} ms CPU/req, "
                f"errors {closed['errors'] + opened['errors']} {closed['statuses']}")  # fmt: skip
        if not measured:
            continue
        a, b = got[a_name], got[b_name]
        rps.add(a["closed"]["rps"], b["closed"]["rps"])
        cpu.add(a["closed"]["cpu_ms_per_req"], b["closed"]["cpu_ms_per_req"])
        p50.add(a["closed"]["latency"]["p50_ms"], b["closed"]["latency"]["p50_ms"])
        p99.add(a["open"]["latency"]["p99_ms"], b["open"]["latency"]["p99_ms"])


def read_metrics(name: str, target_ratio: float) -> tuple[Metric, Metric, Metric, Metric]:
    return (
        Metric(name, "req/s", "req/s", True, target_ratio=target_ratio),
        Metric(name, "server CPU/req", "ms", False),
        Metric(name, "p50 closed-loop", "ms", False),
        Metric(name, "p99 open-loop", "ms", False),
    )


# The resource, one indexed row read per request, and a JWT-only resource: the
# difference between the two is the database round trip; the second shows the
# framework + authentication overhead on its own.
S1_RESOURCES = {
    S1_PATH: "1 auth GET /auth/me (1 query)",
    "/api/v1/plugins": "1b auth GET /plugins (no query)",
}


def scenario_1(envs: Envs, profile: Profile) -> list[Metric]:
    """Authenticated GETs of small JSON resources vs bare Starlette with the same bytes."""
    crm2 = envs.get()
    found: list[Metric] = []
    with crm2.served() as (app, headers):
        answers = {}
        for number, path in enumerate(S1_RESOURCES):
            answer = httpx.get(f"{app.url}{path}", headers=headers, timeout=10)
            answer.raise_for_status()
            body_file = crm2.workdir / f"s1-body-{number}.json"
            body_file.write_bytes(answer.content)
            answers[path] = answer
        bares = {
            path: uvicorn_app("bare_starlette", crm2.workdir, BENCH_BODY_FILE=str(
                crm2.workdir / f"s1-body-{number}.json"), BENCH_PATH=path)
            for number, path in enumerate(S1_RESOURCES)
        }  # fmt: skip
        raw = raw_asyncpg_me(crm2, answers[S1_PATH].json())
        with running(*bares.values(), raw):  # the three baselines start together
            for path, label in S1_RESOURCES.items():
                bare = bares[path]
                if httpx.get(f"{bare.url}{path}", timeout=10).content != answers[path].content:
                    raise RuntimeError("the baseline does not answer the same bytes")
                metrics = read_metrics(label, 0.55)
                variants = {"crm2": (app, app.url), "baseline": (bare, bare.url)}
                compare_get(label.split()[0], variants, path, headers, profile, *metrics)
                found += metrics
                if path == S1_PATH:
                    found += _versus_raw_asyncpg(app, raw, answers[path].json(), headers,
                                                 profile)  # fmt: skip
    return found


def raw_asyncpg_me(crm2: Crm2Env, crm2_answer: dict[str, Any]) -> Server:
    """``raw_asyncpg_me.py`` on crm2's database, granting the permissions crm2 listed."""
    return uvicorn_app("raw_asyncpg_me", crm2.workdir, BENCH_DSN=crm2.asyncpg_dsn,
                       BENCH_JWT_SECRET=JWT_SECRET,
                       BENCH_ME_PERMISSIONS=json.dumps(crm2_answer["permissions"]))  # fmt: skip


def _versus_raw_asyncpg(
    app: Server, raw: Server, crm2_answer: dict[str, Any], headers: dict[str, str],
    profile: Profile,
) -> list[Metric]:  # fmt: skip
    """Scenario 1 against raw asyncpg + the same JWT check (``raw_asyncpg_me.py``)."""
    metrics = read_metrics("1 auth GET /auth/me vs raw asyncpg + JWT", 0.50)
    got = httpx.get(f"{raw.url}{S1_PATH}", headers=headers, timeout=10)
    got.raise_for_status()
    if got.json() != crm2_answer:
        raise RuntimeError(f"raw_asyncpg_me answers another user:\n{got.text}")
    if httpx.get(f"{raw.url}{S1_PATH}", timeout=10).status_code != 401:
        raise RuntimeError("raw_asyncpg_me answers without a token")
    variants = {"crm2": (app, app.url), "baseline": (raw, raw.url)}
    compare_get("1-raw", variants, S1_PATH, headers, profile, *metrics)
    return list(metrics)


S1C_PATH = "/api/v1/plugins"


def scenario_1c(envs: Envs, profile: Profile) -> list[Metric]:
    """1b's GET with an API key instead of a bearer token, the key's row cached per process
    (the default) and read on every request (``CRM2_AUTH_CREDENTIALS_CACHE_SECONDS=0``, how
    it was before the cache), each against the same bare Starlette route.

    Both crm2 servers run on one database from the start (one API key, made through the
    first); one bare server answers the bytes both return.
    """
    crm2 = envs.get()
    labels = {
        "1c API-key GET /plugins (row cached)": {},
        "1c API-key GET /plugins (row read per request)":
            {"CRM2_AUTH_CREDENTIALS_CACHE_SECONDS": "0"},
    }  # fmt: skip
    apps = {label: crm2.serve(**extra) for label, extra in labels.items()}
    found: list[Metric] = []
    with running(*apps.values()):
        first = next(iter(apps.values()))
        made = httpx.post(f"{first.url}/api/v1/auth/api-keys", headers=crm2.bearer(first.url),
                          json={"name": "bench", "role": "admin",
                                "current_password": USER_PASSWORD}, timeout=30)  # fmt: skip
        made.raise_for_status()
        headers = {"Authorization": f"Bearer {made.json()['key']}"}
        bodies = set()
        for app in apps.values():
            answer = httpx.get(f"{app.url}{S1C_PATH}", headers=headers, timeout=10)
            answer.raise_for_status()
            bodies.add(answer.content)
        if len(bodies) != 1:
            raise RuntimeError("the two crm2 servers answer different bytes")
        body_file = crm2.workdir / "s1c-body.json"
        body_file.write_bytes(bodies.pop())
        bare = uvicorn_app("bare_starlette", crm2.workdir, BENCH_BODY_FILE=str(body_file),
                           BENCH_PATH=S1C_PATH)  # fmt: skip
        with running(bare):
            for label, app in apps.items():
                metrics = read_metrics(label, 0.55)
                variants = {"crm2": (app, app.url), "baseline": (bare, bare.url)}
                compare_get("1c", variants, S1C_PATH, headers, profile, *metrics)
                found += metrics
    return found
