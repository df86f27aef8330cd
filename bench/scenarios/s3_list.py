"""Scenarios 3 and 3b: list 50 deals with a filter and a cursor on a large table.

Both use ``GET /api/v1/deals/deals?status=open&limit=50`` (default sort
``-updated_at``, so crm2 orders by ``updated_at DESC, id DESC``) as the admin user,
who sees every record. The data sets come from ``crm2 deals seed-load`` (the same
generator as ``crm2 seed load``) and are seeded once per run, shared by 3 and 3b.

* 3: page 2 (the cursor crm2 returned with page 1) with 1M deals in the table, crm2
  vs the same SQL through raw asyncpg serialized with orjson behind bare Starlette
  (``raw_asyncpg_deals.py``); both must return the same deals.
* 3b: crm2 against itself. Page 1 at 100k vs 1M rows shows whether the cost grows
  with the table; page 2,000 vs page 1 at 1M rows whether it grows with the depth.
  The cursor for page N is the one crm2 would have issued at the end of page N - 1,
  built with crm2's own ``encode_cursor`` from the row found by ``OFFSET``.
"""

from __future__ import annotations

import http.client
import statistics
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from harness import Crm2Env, Envs, Metric, Profile, log, measure_http, running
from harness import rounds as profile_rounds

from scenarios.deals_common import DEALS_PATH, asyncpg_baseline, seeded_env, sql

LIST_QUERY = "status=open&limit=50"
PAGE = 50


def sizes(profile: Profile) -> tuple[int, int, int]:
    """(small table, large table, deep page): 100k, 1M, 2,000 for the full run."""
    return (10_000, 50_000, 300) if profile.quick else (100_000, 1_000_000, 2_000)


def large_env(envs: Envs, profile: Profile) -> Crm2Env:
    return seeded_env(envs, "deals_large", sizes(profile)[1])


def page_url(base_url: str, cursor: str | None = None) -> str:
    url = f"{base_url}{DEALS_PATH}?{LIST_QUERY}"
    return f"{url}&cursor={quote(cursor)}" if cursor else url


def cursor_for_page(env: Crm2Env, page: int) -> str:
    """The cursor crm2 issues with page ``page - 1`` (its last row, in crm2's encoding)."""
    from crm2_core.db.pagination import encode_cursor

    query = ("SELECT updated_at, id FROM deals_deal WHERE status = 'open' "
             "ORDER BY updated_at DESC, id DESC OFFSET $1 LIMIT 1")  # fmt: skip
    rows = sql(env.asyncpg_dsn, query, (page - 1) * PAGE - 1)
    if not rows:
        raise RuntimeError(f"the table has no page {page}")
    scope = "deals_deal.updated_at:desc,deals_deal.id:desc"  # cursor_scope of the list's keys
    return encode_cursor([rows[0]["updated_at"], rows[0]["id"]], scope)


def fetch_page(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = httpx.get(url, headers=headers or {}, timeout=60)
    answer.raise_for_status()
    return dict(answer.json())


def alternating_p50(
    runs: dict[str, tuple[str, dict[str, str]]], duration: float
) -> dict[str, float]:
    """p50 latency (ms) of each GET, requests sent one at a time, the variants in turn.

    One keep-alive ``http.client`` connection per variant (stdlib: a small, constant
    client cost); bounded by ``duration`` seconds and 20,000 requests.
    """
    conns = {}
    for name, (url, _headers) in runs.items():
        parts = urlsplit(url)
        conns[name] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    deadline = time.perf_counter() + duration
    try:
        for _ in range(20_000):
            if time.perf_counter() > deadline:
                break
            for name, (url, headers) in runs.items():
                parts = urlsplit(url)
                started = time.perf_counter()
                conns[name].request("GET", f"{parts.path}?{parts.query}", headers=headers)
                answer = conns[name].getresponse()
                answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"{name}: HTTP {answer.status}")
                samples[name].append(time.perf_counter() - started)
    finally:
        for conn in conns.values():
            conn.close()
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def _ids(page: dict[str, Any]) -> list[str]:
    return [str(item["id"]) for item in page["items"]]


def scenario_3(envs: Envs, profile: Profile) -> list[Metric]:
    """Page 2 of a filtered deal list at 1M rows: crm2 vs the same SQL via raw asyncpg."""
    env = large_env(envs, profile)
    label = f"3 list 50 deals, status filter, page 2, {sizes(profile)[1]:,} deals"
    rps = Metric(label, "req/s", "req/s", True, target_ratio=0.35)
    cpu = Metric(label, "server CPU/req", "ms", False)
    p50 = Metric(label, "p50 closed-loop", "ms", False)
    with running(env.serve(), asyncpg_baseline(env)) as (app, bare):
        app_url, bare_url = app.url, bare.url
        headers = env.bearer(app_url)
        cursor = fetch_page(page_url(app_url), headers)["next_cursor"]
        crm2_page = fetch_page(page_url(app_url, cursor), headers)
        bare_page = fetch_page(page_url(bare_url, cursor))
        if _ids(crm2_page) != _ids(bare_page) or len(crm2_page["items"]) != PAGE:
            raise RuntimeError("the baseline does not return the deals crm2 returns")
        if crm2_page["next_cursor"] != bare_page["next_cursor"]:
            log("s3: note: the baseline encodes the next cursor differently")
        variants = {"crm2": (app, page_url(app_url, cursor)),
                    "baseline": (bare, page_url(bare_url, cursor))}  # fmt: skip
        for number, measured in profile_rounds(profile):
            got = {}
            for variant, (server, url) in variants.items():
                got[variant] = out = measure_http(server, "closed", url, profile.closed_s,
                                                  connections=profile.connections,
                                                  client="raw", headers=headers)  # fmt: skip
                cpu_ms = out["cpu_ms_per_req"] or 0
                log(f"s3 round {number} {variant}: {out['rps']:.0f} req/s, "
                    f"{cpu_ms:.2f} ms CPU/req, errors {out['errors']}")  # fmt: skip
            if measured:
                a, b = got["crm2"], got["baseline"]
                rps.add(a["rps"], b["rps"])
                cpu.add(a["cpu_ms_per_req"], b["cpu_ms_per_req"])
                p50.add(a["latency"]["p50_ms"], b["latency"]["p50_ms"])
    return [rps, cpu, p50]


def scenario_3b(envs: Envs, profile: Profile) -> list[Metric]:
    """crm2's list p50 at 100k vs 1M rows, and page 2,000 vs page 1 (at 1M rows).

    Latency is sampled by ``alternating_p50``: one request at a time, the variants in
    turn, so every variant sees the same background load (a shared 2-core machine
    otherwise swamps a 1.3x threshold). The raw asyncpg server's deep/first ratio is
    reported alongside: when it grows too, the cost is in the SQL, not in crm2's Python.
    """
    small_n, large_n, deep = sizes(profile)
    small, large = seeded_env(envs, "deals_small", small_n), large_env(envs, profile)
    label = "3b list growth (crm2 vs itself)"
    by_size = Metric(label, f"p50 page 1: {large_n:,} / {small_n:,} rows", "ms", False,
                     target_ratio=1.3)  # fmt: skip
    by_depth = Metric(label, f"p50 at {large_n:,}: page {deep:,} / page 1", "ms", False,
                      target_ratio=1.3)  # fmt: skip
    raw_depth = Metric("3b raw asyncpg vs itself", f"p50 page {deep:,} / page 1", "ms", False)
    deep_cursor = cursor_for_page(large, deep)
    with running(small.serve(), large.serve(), asyncpg_baseline(large)) as servers:
        urls = [server.url for server in servers]
        headers = small.bearer(urls[0])
        large_headers = large.bearer(urls[1])
        deep_page = fetch_page(page_url(urls[1], deep_cursor), large_headers)
        if _ids(deep_page) != _ids(fetch_page(page_url(urls[2], deep_cursor))):
            raise RuntimeError("the baseline's deep page differs from crm2's")
        runs: dict[str, tuple[str, dict[str, str]]] = {
            "small p1": (page_url(urls[0]), headers),
            "large p1": (page_url(urls[1]), large_headers),
            "large deep": (page_url(urls[1], deep_cursor), large_headers),
            "raw p1": (page_url(urls[2]), {}),
            "raw deep": (page_url(urls[2], deep_cursor), {}),
        }
        duration = max(1.5, profile.closed_s * 0.75)  # all five variants share it
        for number, measured in profile_rounds(profile):
            p50 = alternating_p50(runs, duration)
            log(f"s3b round {number}: p50 ms " + ", ".join(f"{k} {v:.2f}" for k, v in p50.items()))
            if measured:
                by_size.add(p50["large p1"], p50["small p1"])
                by_depth.add(p50["large deep"], p50["large p1"])
                raw_depth.add(p50["raw deep"], p50["raw p1"])
    return [by_size, by_depth, raw_depth]
