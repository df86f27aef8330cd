"""Baseline for scenario 11: the client rows a CSV import writes, through asyncpg alone.

Reads the same CSV file the crm2 import gets, and per row does what the import's
write pass does at the least: one ``deals_client`` row, its ``deals_client_email``
rows and one ``core_event`` outbox row, sent with ``executemany`` in batches of
500, one transaction per batch (as the crm2 job commits). No validation, no
upsert lookups. Prints one JSON line: rows written, seconds after connecting, and the
CPU seconds its own process and its database backend spent (the backend read from
/proc: the bench's PostgreSQL runs on this machine; ``null`` where it cannot be read).

    python bench/baselines/insert_clients.py --dsn postgresql://… --csv clients.csv
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
import uuid
from datetime import UTC, datetime

import asyncpg

BATCH = 500
CLIENT_SQL = (
    "INSERT INTO deals_client (id, kind, name, emails, phones, tax_id, address, tags, owner_id,"
    " archived, search_text, created_at, updated_at, version)"
    " VALUES ($1, $2, $3, $4, '[]', NULL, '', $5, $6, false, $7, $8, $8, 1)"
)
EMAIL_SQL = "INSERT INTO deals_client_email (client_id, email) VALUES ($1, $2)"
EVENT_SQL = (
    "INSERT INTO core_event (id, type, version, occurred_at, actor_kind, actor_id, subject, data)"
    " VALUES ($1, 'deals.client.created', 1, $2, 'user', $3, $4, $5)"
)


def read(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def backend_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            data = stat.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


async def main(dsn: str, path: str) -> None:
    own_before = own_cpu_s()
    rows = read(path)
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    backend_before = backend_cpu_s(backend)
    try:
        owner = await conn.fetchval("SELECT id FROM auth_user ORDER BY created_at LIMIT 1")
        for start in range(0, len(rows), BATCH):
            now = datetime.now(UTC)
            clients, emails, events = [], [], []
            for row in rows[start : start + BATCH]:
                cid = uuid.uuid4()
                mails = [e for e in row["emails"].split(";") if e]
                tags = [t for t in row.get("tags", "").split(";") if t]
                text = " ".join([row["name"], *mails]).lower()
                clients.append((cid, row["kind"], row["name"], json.dumps(mails),
                                json.dumps(tags), owner, text, now))  # fmt: skip
                emails += [(cid, e) for e in mails]
                data = {"name": row["name"], "kind": row["kind"], "owner_id": str(owner)}
                events.append((uuid.uuid4(), now, str(owner), str(cid), json.dumps(data)))
            async with conn.transaction():
                await conn.executemany(CLIENT_SQL, clients)
                await conn.executemany(EMAIL_SQL, emails)
                await conn.executemany(EVENT_SQL, events)
        seconds = time.perf_counter() - started
        backend_after = backend_cpu_s(backend)
    finally:
        await conn.close()
    cpu = None
    if backend_before is not None and backend_after is not None:
        cpu = backend_after - backend_before + own_cpu_s() - own_before
    print(json.dumps({"rows": len(rows), "seconds": seconds, "cpu_seconds": cpu}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.dsn, args.csv))
