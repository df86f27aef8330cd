"""Scenario 11: a client CSV import of 50,000 rows as a background job vs asyncpg inserts.

crm2: ``POST /api/v1/deals/clients/import`` with the file (large, so it answers
202 + Location), then the status resource polled every 50 ms until ``done``;
the figure is rows per second from the POST to the job's end. The same file is
also imported in the request (``?background=false``, one transaction). Baseline:
``baselines/insert_clients.py``, asyncpg ``executemany`` of the same rows (client,
e-mail and outbox rows, 500 per transaction) with no validation and no upsert
lookups. Each variant starts from truncated tables; rounds interleave.
The issue's target: at least 5,000 rows/s (the import before the kit: ~140 rows/s).
Every client created publishes ``deals.client.created``; with the embedded broker the
other plugins' handlers (tasks' automations) run in the serving process during the
import. ``BENCH_S11_PLUGINS=deals`` serves only the core and deals, to see the import alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
from harness import BASELINES, PYTHON, Envs, Metric, Profile, log, rounds, running

from scenarios.deals_common import execute, sql

TRUNCATE = "TRUNCATE deals_client, deals_client_email, core_event, core_import_job CASCADE"
PATH = "/api/v1/deals/clients/import"


def write_file(path: Path, rows: int) -> None:
    lines = ["kind,name,emails,phones,tags"]
    lines += [f"person,Client {i},client{i}@import.example,+39 06 {i},bulk;import"
              for i in range(rows)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _import(base: str, token: str, path: Path, background: bool) -> float:
    """Seconds from the POST to the end of the import (the job's, when it is one)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        files = {"file": (path.name, path.read_bytes(), "text/csv")}
        answer = client.post(PATH, files=files, params={"background": str(background).lower()})
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"import answered {answer.status_code}: {answer.text[:500]}")
        if answer.status_code == 202:
            location = answer.headers["location"]
            while True:
                job = client.get(location).json()
                if job["status"] in ("done", "refused", "failed"):
                    break
                time.sleep(0.05)
            if job["status"] != "done" or not job["applied"]:
                raise RuntimeError(f"the import job ended {job['status']}: {job.get('detail')}")
        seconds = time.perf_counter() - started
    return seconds


def _check(dsn: str, rows: int) -> None:
    count = int(sql(dsn, "SELECT count(*) AS n FROM deals_client")[0]["n"])
    if count != rows:
        raise RuntimeError(f"{count} clients after the import, not {rows}")


def scenario_11(envs: Envs, profile: Profile) -> list[Metric]:
    """Rows per second of a client CSV import: background job, in-request, asyncpg baseline."""
    rows = 3_000 if profile.quick else 50_000
    env = envs.get("s11")
    csv_path = env.workdir / "s11-clients.csv"
    write_file(csv_path, rows)
    label = f"11 client CSV import, {rows:,} rows"
    job_rate = Metric(label, "rows/s, background job", "rows/s", True)
    request_rate = Metric(label, "rows/s, in the request", "rows/s", True)
    baseline_cmd = [PYTHON, str(BASELINES / "insert_clients.py"), "--dsn", env.asyncpg_dsn,
                    "--csv", str(csv_path)]  # fmt: skip
    settings = {"CRM2_DEALS_IMPORT_MAX_ROWS": str(rows), "CRM2_SCHEDULER_ENABLED": "false"}
    if os.environ.get("BENCH_S11_PLUGINS"):
        settings["CRM2_PLUGINS"] = os.environ["BENCH_S11_PLUGINS"]
    with running(env.serve(**settings)) as (server,):
        base = server.url
        token = env.login(base)
        for number, measured in rounds(profile):
            execute(env.asyncpg_dsn, TRUNCATE)
            job_s = _import(base, token, csv_path, background=True)
            _check(env.asyncpg_dsn, rows)
            execute(env.asyncpg_dsn, TRUNCATE)
            request_s = _import(base, token, csv_path, background=False)
            _check(env.asyncpg_dsn, rows)
            execute(env.asyncpg_dsn, TRUNCATE)
            done = subprocess.run(baseline_cmd, env=env.env, cwd=env.workdir,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            if done.returncode:
                raise RuntimeError(f"baseline failed:\n{done.stderr[-2000:]}")
            base_s = float(json.loads(done.stdout)["seconds"])
            _check(env.asyncpg_dsn, rows)
            log(f"s11 round {number}: job {rows / job_s:,.0f} rows/s, in-request "
                f"{rows / request_s:,.0f} rows/s, asyncpg {rows / base_s:,.0f} rows/s")  # fmt: skip
            if measured:
                job_rate.add(rows / job_s, rows / base_s)
                request_rate.add(rows / request_s, rows / base_s)
    execute(env.asyncpg_dsn, TRUNCATE)
    return [job_rate, request_rate]
