"""Scenario 2: create a deal through the full app (validate, insert, outbox row, commit).

crm2: ``POST /api/v1/deals/deals`` with a bearer token: the body is validated, the
client, owner and default pipeline's first open stage are looked up, the deal and its
first stage-history row are inserted, a ``deals.deal.created`` outbox row is written
and the transaction commits; the relay inside ``crm2 serve`` then moves the outbox
rows to the (in-memory) broker, which is part of crm2's cost.

Baseline: ``raw_asyncpg_deals.py``: the same JSON body, one asyncpg
``INSERT … RETURNING`` of the same row into the same table of the same database.
Both write to one table, interleaved, so both see the same table size.

Every other installed plugin's handlers of ``deals.deal.created`` (tasks' automations,
notifications' rules, documents' follow-owner) run in the serving process too, so
the full run also serves crm2 with the deals plugin alone (``CRM2_PLUGINS=deals``, its
own database): the create and its relay without other plugins' features, like for like
with the 2026-11-25 figures, which had no other plugin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from harness import (
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
)

from scenarios.deals_common import DEALS_PATH, asyncpg_baseline, sql


def _deal_body(client_id: str) -> dict[str, Any]:
    return {"title": "Bench deal", "client_id": client_id, "value": "1234.50", "currency": "EUR"}


def _make_client(app_url: str, headers: dict[str, str]) -> str:
    answer = httpx.post(f"{app_url}/api/v1/deals/clients", headers=headers, timeout=30,
                        json={"kind": "company", "name": "Bench client"})  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["id"])


def first_deal(app_url: str, headers: dict[str, str], body_file: Path) -> dict[str, Any]:
    """Create a client and one deal through crm2 (the answer: its ids for the baselines);
    the deal's body goes to ``body_file`` for the load runs."""
    body = _deal_body(_make_client(app_url, headers))
    first = httpx.post(f"{app_url}{DEALS_PATH}", headers=headers, json=body, timeout=30)
    first.raise_for_status()
    body_file.write_text(json.dumps(body))
    return dict(first.json())


def _check_same_row(dsn: str, crm2_deal: dict[str, Any], base_deal: dict[str, Any]) -> None:
    """Both servers must have written the same row (apart from id and times)."""
    rows = sql(dsn, "SELECT * FROM deals_deal WHERE id = ANY($1::uuid[])",
               [crm2_deal["id"], base_deal["id"]])  # fmt: skip
    if len(rows) != 2:
        raise RuntimeError(f"expected both new deals in the table, found {len(rows)}")
    skip = {"id", "closed_at", "stage_entered_at", "created_at", "updated_at"}
    a, b = ({k: v for k, v in r.items() if k not in skip} for r in rows)
    if a != b:
        raise RuntimeError(f"the baseline writes another row:\n{a}\n{b}")


def scenario_2(envs: Envs, profile: Profile) -> list[Metric]:
    """Create a deal: crm2's POST vs one raw asyncpg INSERT … RETURNING."""
    label = f"2 create deal POST {DEALS_PATH}"
    rps = Metric(label, "req/s", "req/s", True, target_ratio=0.40)
    cpu = Metric(label, "server CPU/req", "ms", False)
    p50 = Metric(label, "p50 closed-loop", "ms", False)
    p99 = Metric(label, "p99 open-loop", "ms", False, target_ratio=2.5)
    crm2 = envs.get("s2")
    alone_rps = Metric(label, "req/s, deals plugin alone", "req/s", True)
    alone_cpu = Metric(label, "server CPU/req, deals plugin alone", "ms", False)
    alone = None if profile.quick else _deals_alone(envs)
    with crm2.served() as (app, headers):
        body_file = crm2.workdir / "s2-body.json"
        deal = first_deal(app.url, headers, body_file)
        ids = {"BENCH_PIPELINE_ID": deal["pipeline_id"], "BENCH_STAGE_ID": deal["stage_id"],
               "BENCH_OWNER_ID": deal["owner_id"]}  # fmt: skip
        with running(asyncpg_baseline(crm2, **ids)) as (bare,):
            answer = httpx.post(
                f"{bare.url}{DEALS_PATH}",
                content=body_file.read_bytes(),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            answer.raise_for_status()
            _check_same_row(crm2.asyncpg_dsn, deal, answer.json())
            variants = {"crm2": (app, app.url), "baseline": (bare, bare.url)}
            _interleave(variants, headers, str(body_file), profile, rps, cpu, p50, p99)
        count = sql(crm2.asyncpg_dsn, "SELECT count(*) AS n FROM deals_deal")[0]["n"]
        log(f"s2: {count:,} deals in the table at the end")
    if alone is None:
        return [rps, cpu, p50, p99]
    _measure_alone(alone, profile, alone_rps, alone_cpu)
    return [rps, cpu, p50, p99, alone_rps, alone_cpu]


def _deals_alone(envs: Envs) -> Crm2Env:
    """The database the deals plugin alone is served from (migrated with it alone)."""
    return envs.get("s2-deals", CRM2_PLUGINS="deals")


def prepare(envs: Envs, profile: Profile) -> None:
    """The scenario's environments, made before the run's first scenario."""
    envs.get("s2")
    if not profile.quick:
        _deals_alone(envs)


def _measure_alone(alone: Crm2Env, profile: Profile, rps: Metric, cpu: Metric) -> None:
    """crm2 with the deals plugin alone vs the same raw INSERT on its own database,
    closed loop, A B per round (like ``_interleave`` without the open loop)."""
    with alone.served() as (app, headers):
        body_file = alone.workdir / "s2-deals-body.json"
        deal = first_deal(app.url, headers, body_file)
        ids = {"BENCH_PIPELINE_ID": deal["pipeline_id"], "BENCH_STAGE_ID": deal["stage_id"],
               "BENCH_OWNER_ID": deal["owner_id"]}  # fmt: skip
        with running(asyncpg_baseline(alone, **ids)) as (bare,):
            post = {"method": "POST", "body-file": str(body_file), "headers": headers}
            for number, measured in rounds(profile):
                a, b = (
                    measure_http(server, "closed", server.url + DEALS_PATH, profile.closed_s,
                                 client="raw", connections=profile.connections, **post)
                    for server in (app, bare)
                )  # fmt: skip
                cpu_ms = a["cpu_ms_per_req"] or 0
                log(f"s2 round {number} deals alone: {a['rps']:.0f} req/s, "
                    f"{cpu_ms:.2f} ms CPU/req, raw {b['rps']:.0f} req/s")  # fmt: skip
                if measured:
                    rps.add(a["rps"], b["rps"])
                    cpu.add(a["cpu_ms_per_req"], b["cpu_ms_per_req"])


def _interleave(
    variants: dict[str, tuple[Server, str]],
    headers: dict[str, str],
    body_file: str,
    profile: Profile,
    rps: Metric,
    cpu: Metric,
    p50: Metric,
    p99: Metric,
) -> None:
    """Closed loop (req/s, CPU/req, p50) then open loop (p99) per variant, A B per round.

    The open-loop rate is 40 % of crm2's warm-up req/s (s1 uses half; a write is
    noisier on a shared machine), so neither server saturates and p99 shows the
    per-request cost, not a queue.
    """
    post = {"method": "POST", "body-file": body_file, "headers": headers}
    open_rate: float | None = None
    for number, measured in rounds(profile):
        got: dict[str, dict[str, Any]] = {}
        for variant, (server, base_url) in variants.items():
            url = base_url + DEALS_PATH
            closed = measure_http(server, "closed", url, profile.closed_s, client="raw",
                                  connections=profile.connections, **post)  # fmt: skip
            if open_rate is None:
                open_rate = max(10.0, round(closed["rps"] * 0.4))
                p99.name = f"p99 open-loop @{open_rate:g}/s"
            opened = measure_open(server, url, profile, measured, open_rate, **post)
            got[variant] = {"closed": closed, "open": opened}
            log(f"s2 round {number} {variant}: {closed['rps']:.0f} req/s, "
                f"{closed['cpu_ms_per_req'] or 0:.2f} ms CPU/req, p99 open "
                f"{opened['latency']['p99_ms'] or 0:.1f} ms, errors "
                f"{closed['errors'] + opened['errors']} {closed['statuses']}")  # fmt: skip
        if not measured:
            continue
        a, b = got["crm2"], got["baseline"]
        rps.add(a["closed"]["rps"], b["closed"]["rps"])
        cpu.add(a["closed"]["cpu_ms_per_req"], b["closed"]["cpu_ms_per_req"])
        p50.add(a["closed"]["latency"]["p50_ms"], b["closed"]["latency"]["p50_ms"])
        p99.add(a["open"]["latency"]["p99_ms"], b["open"]["latency"]["p99_ms"])
