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

The handlers go on after the job ends; each timed import and each TRUNCATE waits
for them to settle first (every event relayed, their applied and dead-lettered
counts still for 1.5 s; at most 300 s), so a round neither shares the machine with
the last one's handlers nor truncates under them. "until handlers done" is rows per
second from the POST to the last handler's last effect (its ``applied_at``). CPU:
rows per CPU second of the server and the database's backends, POST to handlers
done (the baseline: its process and backends); steadier than wall time on a
machine other work shares.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BASELINES,
    PYTHON,
    Envs,
    Metric,
    Profile,
    backend_cpu_used,
    cpu_seconds,
    log,
    pg_backend_cpu,
    rounds,
    running,
    settle,
)

from scenarios.deals_common import execute, sql

# core_applied_event and core_dead_letter too: a round must not inherit the last one's
# handler records (the claim reads them)
TRUNCATE = (
    "TRUNCATE deals_client, deals_client_email, core_event, core_applied_event, "
    "core_dead_letter, core_import_job CASCADE"
)
SETTLE_S = 300.0
# What the handlers have done, cheaply (index-only counts; no join of the log with
# their records, which took a second a poll at 100k records): events not relayed yet,
# events per type, and per handler its applied and dead-lettered records.
UNRELAYED = "SELECT count(*) AS n FROM core_event WHERE relayed_at IS NULL"
EVENT_TYPES = "SELECT type, count(*) AS n FROM core_event GROUP BY type"
HANDLERS_DONE = (
    "SELECT handler, count(*) AS n, max(applied_at) AS last FROM core_applied_event"
    " GROUP BY handler UNION ALL"
    " SELECT handler, count(*), NULL FROM core_dead_letter GROUP BY handler"
)
PATH = "/api/v1/deals/clients/import"
TARGET_ROWS_PER_S = 5_000.0  # issue 9 #15


def write_file(path: Path, rows: int) -> None:
    lines = ["kind,name,emails,phones,tags"]
    lines += [f"person,Client {i},client{i}@import.example,+39 06 {i},bulk;import"
              for i in range(rows)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _import(base: str, token: str, path: Path, background: bool) -> tuple[float, float]:
    """Seconds from the POST to the end of the import (the job's, when it is one), and
    the POST's wall-clock moment (``time.time()``)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        started, posted_at = time.perf_counter(), time.time()
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
    return seconds, posted_at


def owed(event_types: dict[str, int], done: dict[str, int]) -> int:
    """Handlers not finished: one that has taken events is finished when it has done as
    many as there are events of one type, or of every type (the import's events are one
    type; a handler's own events would be another). One that has taken none yet is
    left to settle's quiet time."""
    finished = {*event_types.values(), sum(event_types.values())}
    return sum(1 for n in done.values() if n and n not in finished)


def _handler_state(dsn: str) -> dict[str, Any]:
    """``waiting`` (events not relayed, handlers not finished), ``done`` (per handler)
    and ``last_applied`` (the last handler effect's time)."""
    import asyncpg

    async def read() -> dict[str, Any]:
        conn = await asyncpg.connect(dsn)
        try:
            unrelayed = int(await conn.fetchval(UNRELAYED))
            types = {r["type"]: int(r["n"]) for r in await conn.fetch(EVENT_TYPES)}
            done: dict[str, int] = {}
            lasts = []
            for row in await conn.fetch(HANDLERS_DONE):
                done[row["handler"]] = done.get(row["handler"], 0) + int(row["n"])
                if row["last"] is not None:
                    lasts.append(row["last"])
        finally:
            await conn.close()
        return {"waiting": unrelayed + owed(types, done), "done": done,
                "last_applied": max(lasts, default=None)}  # fmt: skip

    return asyncio.run(read())


def _settle(dsn: str, what: str) -> dict[str, Any]:
    """Wait (bounded) for the handlers to finish what the server has; their last state."""
    state: dict[str, Any] = {}

    def read() -> tuple[int, Any]:
        state.update(_handler_state(dsn))
        return int(state["waiting"]), sorted(state["done"].items())

    started = time.perf_counter()
    if not settle(read, timeout=SETTLE_S, poll=0.5):
        log(f"s11: handlers still busy after {SETTLE_S:.0f} s ({what}): {state}")
    elif time.perf_counter() - started > 5:
        log(f"s11: handlers settled in {time.perf_counter() - started:.0f} s ({what})")
    return state


def _truncate(dsn: str, attempts: int = 5) -> None:
    """TRUNCATE once the handlers are done; again when it deadlocks with the server (the
    relay's idle poll locks core_event while TRUNCATE holds the tables before it)."""
    import asyncpg

    _settle(dsn, "before TRUNCATE")
    for attempt in range(attempts):
        try:
            execute(dsn, TRUNCATE)
            return
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


def _handlers_done_s(state: dict[str, Any], posted_at: float) -> float | None:
    """Seconds from the POST to the last handler effect (None: no handler applied any)."""
    last = state.get("last_applied")
    if last is None:
        return None
    if last.tzinfo is None:  # stored as UTC
        last = last.replace(tzinfo=UTC)
    return max(0.0, last.timestamp() - posted_at)


def _per(rows: int, cpu_s: float | None) -> str:
    return f"{rows / cpu_s:,.0f}" if cpu_s else "?"


class _Cpu:
    """CPU seconds of the server and the database's backends over a ``with`` block."""

    def __init__(self, pg_name: str, pid: int) -> None:
        self.pg_name, self.pid, self.used = pg_name, pid, 0.0

    def __enter__(self) -> _Cpu:
        self.backends = pg_backend_cpu(self.pg_name)
        self.own = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        used = backend_cpu_used(self.backends, pg_backend_cpu(self.pg_name))
        self.used = used + cpu_seconds(self.pid) - self.own


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
    # the floor is for the 50,000-row file: the quick run's 3,000 rows are mostly
    # a job's fixed costs (its status row, the first batches' statistics)
    floor = None if profile.quick else TARGET_ROWS_PER_S
    job_rate = Metric(label, "rows/s, background job", "rows/s", True, target_crm2_min=floor)
    handlers_rate = Metric(label, "rows/s, background job until handlers done", "rows/s", True,
                           target_crm2_min=floor)  # fmt: skip
    cpu_rate = Metric(label, "rows per CPU s (server + database), job until handlers done",
                      "rows/CPU s", True)  # fmt: skip
    request_rate = Metric(label, "rows/s, in the request", "rows/s", True)
    baseline_cmd = [PYTHON, str(BASELINES / "insert_clients.py"), "--dsn", env.asyncpg_dsn,
                    "--csv", str(csv_path)]  # fmt: skip
    settings = {"CRM2_DEALS_IMPORT_MAX_ROWS": str(rows), "CRM2_SCHEDULER_ENABLED": "false"}
    if os.environ.get("BENCH_S11_PLUGINS"):
        settings["CRM2_PLUGINS"] = os.environ["BENCH_S11_PLUGINS"]
    dsn, pg_name = env.asyncpg_dsn, env.pg_name
    assert pg_name is not None, "scenario 11 runs on PostgreSQL"
    with running(env.serve(**settings)) as (server,):
        base = server.url
        for number, measured in rounds(profile):
            token = env.login(base)  # a round outlasts an access token on a busy machine
            _truncate(dsn)
            with _Cpu(pg_name, server.pid) as cpu:
                job_s, posted_at = _import(base, token, csv_path, background=True)
                handlers_s = _handlers_done_s(_settle(dsn, "after the job"), posted_at)
            _check(dsn, rows)
            _truncate(dsn)
            request_s, _ = _import(base, token, csv_path, background=False)
            _check(dsn, rows)
            _truncate(dsn)
            done = subprocess.run(baseline_cmd, env=env.env, cwd=env.workdir,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            if done.returncode:
                raise RuntimeError(f"baseline failed:\n{done.stderr[-2000:]}")
            answer = json.loads(done.stdout)
            base_s, base_cpu = float(answer["seconds"]), answer.get("cpu_seconds")
            _check(dsn, rows)
            until = f"{rows / handlers_s:,.0f} rows/s" if handlers_s else "no handler ran"
            log(f"s11 round {number}: job {rows / job_s:,.0f} rows/s (until handlers done "
                f"{until}; {rows / cpu.used:,.0f} rows/CPU s, asyncpg {_per(rows, base_cpu)}),"
                f" in-request {rows / request_s:,.0f} rows/s,"
                f" asyncpg {rows / base_s:,.0f} rows/s")  # fmt: skip
            if measured:
                job_rate.add(rows / job_s, rows / base_s)
                if handlers_s:
                    handlers_rate.add(rows / handlers_s, rows / base_s)
                cpu_rate.add(rows / cpu.used, rows / base_cpu if base_cpu else None)
                request_rate.add(rows / request_s, rows / base_s)
        _truncate(dsn)  # while the server runs: the baseline's events reach its handlers
    return [job_rate, handlers_rate, cpu_rate, request_rate]
