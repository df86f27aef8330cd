"""Scenario 12: the payments plugin's hottest paths, each against a same-run baseline.

12a "record a payment": ``POST /api/v1/payments/payments/{id}/allocations`` with a new
``Idempotency-Key`` per request (the key claimed and completed, the payment's guarded
UPDATE, the allocation row, the commission lookup, a ``payments.payment.paid`` outbox
row, one commit) vs ``raw_asyncpg_payments.py``: one asyncpg INSERT of the same
allocation row behind bare Starlette. Both are driven by the same closed-loop client
(httpx, ``CONNECTIONS`` at once, unique keys), interleaved A B per round.

12b "export 100k payments": ``GET /api/v1/payments/payments/export.csv`` read to the
end (keyset pages of 5,000 plain rows, formula-safe cells, money as decimal strings) vs
PostgreSQL's ``COPY (SELECT …) TO STDOUT WITH CSV`` of the same rows through asyncpg.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from harness import (
    Envs,
    Metric,
    Profile,
    Server,
    cpu_seconds,
    log,
    rounds,
    running,
    uvicorn_app,
)

from scenarios.deals_common import sql

CONNECTIONS = 8
BODY = {"amount": "1.00", "currency": "EUR"}


async def _drive(url: str, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    """A closed loop of POSTs, each with its own Idempotency-Key; count, p50, errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            answer = await client.post(
                url, json=BODY, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
            )
            latencies.append(time.perf_counter() - sent)
            if answer.status_code != 201:
                errors += 1

    limits = httpx.Limits(max_connections=CONNECTIONS)
    start = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - start
    return {
        "rps": len(latencies) / elapsed,
        "count": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "errors": errors,
    }


def _measure(server: Server, url: str, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    before = cpu_seconds(server.pid)
    out = asyncio.run(_drive(url, headers, seconds))
    used = cpu_seconds(server.pid) - before
    out["cpu_ms_per_req"] = used * 1000 / out["count"] if out["count"] else None
    return out


def scenario_12a(envs: Envs, profile: Profile) -> list[Metric]:
    """Record a payment (allocation + outbox): crm2's POST vs one raw asyncpg INSERT."""
    label = "12a record a payment POST …/payments/{id}/allocations"
    rps = Metric(label, "req/s", "req/s", True)
    cpu = Metric(label, "server CPU/req", "ms", False)
    p50 = Metric(label, "p50 closed-loop", "ms", False)
    env = envs.get("payments")
    with env.served() as (app, headers):
        app_url = app.url
        made = httpx.post(
            f"{app_url}/api/v1/payments/payments",
            timeout=30,
            json={"amount": "1000000000000.00", "currency": "EUR", "reference": "bench"},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        made.raise_for_status()
        payment = made.json()
        path = f"/api/v1/payments/payments/{payment['id']}/allocations"
        baseline = uvicorn_app("raw_asyncpg_payments", env.workdir, BENCH_DSN=env.asyncpg_dsn,
                               BENCH_PAYMENT_ID=payment["id"],
                               BENCH_OWNER_ID=payment["owner_id"])  # fmt: skip
        with running(baseline) as (bare,):
            bare_url = bare.url
            variants = {
                "crm2": (app, app_url + path, headers),
                "baseline": (bare, bare_url + path, {}),
            }
            for number, measured in rounds(profile):
                got = {}
                for variant, (server, url, auth) in variants.items():
                    got[variant] = out = _measure(server, url, auth, profile.closed_s)
                    log(
                        f"s12a round {number} {variant}: {out['rps']:.0f} req/s, "
                        f"{out['cpu_ms_per_req'] or 0:.2f} ms CPU/req, errors {out['errors']}"
                    )
                if measured:
                    a, b = got["crm2"], got["baseline"]
                    rps.add(a["rps"], b["rps"])
                    cpu.add(a["cpu_ms_per_req"], b["cpu_ms_per_req"])
                    p50.add(a["p50_ms"], b["p50_ms"])
        paid = sql(
            env.asyncpg_dsn,
            "SELECT paid_minor FROM payments_payment WHERE id = $1",
            uuid.UUID(payment["id"]),
        )[0]["paid_minor"]
        log(f"s12a: crm2 booked {paid / 100:,.2f} EUR on the bench payment")
    return [rps, cpu, p50]


async def _fill(dsn: str, count: int, owner: uuid.UUID) -> None:
    now = datetime.now(UTC)
    start = date(2026, 1, 1)
    rows = [
        (
            uuid.uuid4(),
            "incoming",
            10_000 + i,
            "EUR",
            0,
            0,
            "planned",
            start + timedelta(days=i % 365),
            "",
            "Client " + str(i % 997),
            "",
            f"REF-{i}",
            "",
            "",
            "",
            "manual",
            owner,
            now - timedelta(seconds=i),
            now - timedelta(seconds=i),
            1,
        )
        for i in range(count)
    ]
    columns = [
        "id",
        "direction",
        "amount_minor",
        "currency",
        "paid_minor",
        "refunded_minor",
        "status",
        "due_date",
        "method",
        "payer",
        "payee",
        "reference",
        "note",
        "insurer",
        "product",
        "provider",
        "owner_id",
        "created_at",
        "updated_at",
        "version",
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("payments_payment", records=rows, columns=columns)
        await conn.execute("VACUUM ANALYZE payments_payment")
    finally:
        await conn.close()


async def _copy_to(dsn: str) -> int:
    sink = bytearray()

    async def write(chunk: bytes) -> None:
        sink.extend(chunk)

    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_from_query(
            "SELECT id, direction, status, amount_minor, paid_minor, refunded_minor, currency, "
            "due_date, method, payer, payee, reference, policy_id, client_id, insurer, product, "
            "schedule_id, instalment, provider, external_id, owner_id, created_at, updated_at "
            "FROM payments_payment ORDER BY created_at DESC, id DESC",
            output=write,
            format="csv",
            header=True,
        )
    finally:
        await conn.close()
    return len(sink)


def scenario_12b(envs: Envs, profile: Profile) -> list[Metric]:
    """Export 100k payments as CSV: crm2's streamed export vs COPY TO."""
    count = 10_000 if profile.quick else 100_000
    label = f"12b export {count:,} payments GET …/payments/export.csv"
    seconds = Metric(label, "time to last byte", "s", False)
    env = envs.get("payx")
    (admin,) = sql(env.asyncpg_dsn, "SELECT id FROM auth_user LIMIT 1")
    asyncio.run(_fill(env.asyncpg_dsn, count, admin["id"]))
    with env.served() as (app, headers):
        app_url = app.url
        for number, measured in rounds(profile):
            started = time.perf_counter()
            size = 0
            with httpx.stream(
                "GET",
                f"{app_url}/api/v1/payments/payments/export.csv",
                headers=headers,
                timeout=600,
            ) as answer:
                answer.raise_for_status()
                lines = 0
                for chunk in answer.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            crm2_s = time.perf_counter() - started
            if lines != count + 1:
                raise RuntimeError(f"the export has {lines - 1} rows, expected {count}")
            started = time.perf_counter()
            copied = asyncio.run(_copy_to(env.asyncpg_dsn))
            copy_s = time.perf_counter() - started
            log(
                f"s12b round {number}: crm2 {crm2_s:.2f} s ({size:,} B), "
                f"COPY TO {copy_s:.2f} s ({copied:,} B)"
            )
            if measured:
                seconds.add(crm2_s, copy_s)
    return [seconds]
