"""Scenario 16: crm2 next to a FastAPI-full-stack-template-style app, same data, same run.

What an integrator would otherwise build: ``baselines/fastapi_template_deals.py``
(plain FastAPI, a synchronous SQLModel session per request, PyJWT bearer check loading
the user, ``response_model``), served by one uvicorn worker like crm2, on the same
PostgreSQL database as crm2 (scenario 3's seeded ``deals_large``: 1M deals, quick
50k), with crm2's access token on both. The request shapes are scenarios 2 and 3's:

* create: ``POST /api/v1/deals/deals`` with the same body (both rows checked equal);
* list: ``GET /api/v1/deals/deals?status=open&limit=50&cursor=<page 1's next_cursor>``
  (both must return the same 50 deals).

Per round and operation (list, then create): crm2 then the template, closed loop
(32 connections, raw client). Ratios are crm2 / template: req/s (target ≥ 3x on
both), CPU ms/request.
"""

from __future__ import annotations

from typing import Any

import httpx
from harness import (
    JWT_SECRET,
    Crm2Env,
    Envs,
    Metric,
    Profile,
    Server,
    log,
    measure_http,
    rounds,
    running,
    uvicorn_app,
)  # fmt: skip

from scenarios.deals_common import DEALS_PATH
from scenarios.s2_create import _check_same_row, first_deal
from scenarios.s3_list import PAGE, _ids, fetch_page, large_env, page_url, sizes

TARGET = 3.0


def template_server(env: Crm2Env, **extra_env: str) -> Server:
    """``fastapi_template_deals.py`` on ``env``'s database (one uvicorn worker)."""
    url = "postgresql+psycopg://" + env.asyncpg_dsn.split("://", 1)[1]
    return uvicorn_app("fastapi_template_deals", env.workdir, BENCH_SQLA_URL=url,
                       BENCH_JWT_SECRET=JWT_SECRET, **extra_env)  # fmt: skip


def scenario_16(envs: Envs, profile: Profile) -> list[Metric]:
    """Create a deal and list 50 deals: crm2 vs the template-style app, side by side."""
    env = large_env(envs, profile)
    create = f"16 create deal vs FastAPI template (POST {DEALS_PATH})"
    listing = f"16 list 50 deals vs FastAPI template, page 2, {sizes(profile)[1]:,} deals"
    metrics = {
        ("create", "rps"): Metric(create, "req/s", "req/s", True, target_ratio=TARGET),
        ("create", "cpu"): Metric(create, "server CPU/req", "ms", False),
        ("list", "rps"): Metric(listing, "req/s", "req/s", True, target_ratio=TARGET),
        ("list", "cpu"): Metric(listing, "server CPU/req", "ms", False),
    }
    with env.served() as (app, headers):
        app_url = app.url
        body_file = env.workdir / "s16-body.json"
        deal = first_deal(app_url, headers, body_file)
        ids = {"BENCH_PIPELINE_ID": deal["pipeline_id"], "BENCH_STAGE_ID": deal["stage_id"]}
        with running(template_server(env, **ids)) as (tpl,):
            tpl_url = tpl.url
            answer = httpx.post(f"{tpl_url}{DEALS_PATH}", content=body_file.read_bytes(),
                                headers={**headers, "Content-Type": "application/json"},
                                timeout=30)  # fmt: skip
            answer.raise_for_status()
            _check_same_row(env.asyncpg_dsn, deal, answer.json())
            if httpx.get(f"{tpl_url}{DEALS_PATH}", timeout=30).status_code != 401:
                raise RuntimeError("the template answers without a token")
            # the cursor is taken after the creates above, as in scenario 3
            cursor = fetch_page(page_url(app_url), headers)["next_cursor"]
            crm2_page = fetch_page(page_url(app_url, cursor), headers)
            tpl_page = fetch_page(page_url(tpl_url, cursor), headers)
            if _ids(crm2_page) != _ids(tpl_page) or len(crm2_page["items"]) != PAGE:
                raise RuntimeError("the template does not list the deals crm2 lists")
            servers = {"crm2": (app, app_url), "template": (tpl, tpl_url)}
            _interleave(servers, headers, str(body_file), cursor, profile, metrics)
    return list(metrics.values())


def _interleave(
    servers: dict[str, tuple[Server, str]],
    headers: dict[str, str],
    body_file: str,
    cursor: str,
    profile: Profile,
    metrics: dict[tuple[str, str], Metric],
) -> None:
    post = {"method": "POST", "body-file": body_file}
    for number, measured in rounds(profile):
        # list first: crm2's relay forwards the outbox rows of its creates while the
        # template's creates run, not during crm2's next measured list
        for op in ("list", "create"):
            got: dict[str, dict[str, Any]] = {}
            for variant, (server, base_url) in servers.items():
                url = base_url + DEALS_PATH if op == "create" else page_url(base_url, cursor)
                got[variant] = out = measure_http(
                    server, "closed", url, profile.closed_s, client="raw",
                    connections=profile.connections, headers=headers,
                    **(post if op == "create" else {}),
                )  # fmt: skip
                log(f"s16 round {number} {op} {variant}: {out['rps']:.0f} req/s, "
                    f"{out['cpu_ms_per_req'] or 0:.2f} ms CPU/req, errors {out['errors']} "
                    f"{out['statuses']}")  # fmt: skip
            if measured:
                a, b = got["crm2"], got["template"]
                metrics[(op, "rps")].add(a["rps"], b["rps"])
                metrics[(op, "cpu")].add(a["cpu_ms_per_req"], b["cpu_ms_per_req"])
