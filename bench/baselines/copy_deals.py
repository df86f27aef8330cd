"""Baseline for scenario 8: the rows ``crm2 seed load`` writes, through asyncpg COPY only.

Generates the same shape of rows as crm2_deals.seed_load (clients, their e-mail rows,
deals spread over every stage; one client per ten deals) as plain tuples and sends
them with ``copy_records_to_table`` in chunks of 10,000, in one transaction. Owners
are existing users, stages and lost reasons are read from the database. Prints one
JSON line with the rows written, the seconds spent after connecting and the seconds
spent inside COPY alone (``copy_seconds``).

    python bench/baselines/copy_deals.py --dsn postgresql://… --clients 10000 --deals 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

CHUNK = 10_000
COPY_SECONDS = [0.0]  # time spent inside copy_records_to_table, i.e. COPY alone
CLIENT_COLUMNS = [
    "id", "kind", "name", "emails", "phones", "tax_id", "address", "tags", "owner_id",
    "archived", "search_text", "created_at", "updated_at", "version",
]  # fmt: skip
DEAL_COLUMNS = [
    "id", "title", "client_id", "pipeline_id", "stage_id", "status", "value_minor",
    "currency", "owner_id", "source", "expected_close_date", "lost_reason_id", "lost_reason",
    "closed_at", "stage_entered_at", "created_at", "updated_at", "version",
]  # fmt: skip


def client_rows(rng: random.Random, owners: list[Any], n: int) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC)
    tag = f"{rng.getrandbits(24):06x}"
    for i in range(n):
        name = f"Client {tag}{i}"
        email = f"c{i}.{tag}@copy.example"
        phone = f"+49 30 {rng.randint(1_000_000, 9_999_999)}"
        at = now - timedelta(seconds=rng.randint(0, 730 * 86_400))
        yield (
            uuid.uuid4(), "person", name, json.dumps([email]), json.dumps([phone]), None, "",
            '["load"]', rng.choice(owners), False, f"{name} {email} {phone}".lower(), at, at, 1,
        )  # fmt: skip


def deal_rows(
    rng: random.Random, clients: list[tuple[Any, Any]], stages: list[Any], reasons: list[Any],
    n: int,
) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    now = datetime.now(UTC)
    for i in range(n):
        client_id, owner_id = rng.choice(clients)
        stage = rng.choice(stages)
        created = now - timedelta(seconds=rng.randint(86_400, 730 * 86_400))
        updated = created + (now - created) * rng.random()
        reason = rng.choice(reasons) if stage["kind"] == "lost" and reasons else None
        yield (
            uuid.uuid4(), f"Deal #{i}", client_id, stage["pipeline_id"], stage["id"],
            stage["kind"], rng.randint(50_000, 3_000_000), "EUR", owner_id, "Web",
            (created + timedelta(days=rng.randint(10, 180))).date(),
            reason["id"] if reason else None, reason["name"] if reason else None,
            updated if stage["kind"] != "open" else None, updated, created, updated, 1,
        )  # fmt: skip


async def copy(conn: asyncpg.Connection, table: str, columns: list[str], chunk: list) -> int:
    started = time.perf_counter()
    await conn.copy_records_to_table(table, records=chunk, columns=columns)
    COPY_SECONDS[0] += time.perf_counter() - started
    return len(chunk)


async def copy_chunks(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    written, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            written, chunk = written + await copy(conn, table, columns, chunk), []
    if chunk:
        written += await copy(conn, table, columns, chunk)
    return written


async def main(dsn: str, clients: int, deals: int) -> dict[str, Any]:
    rng = random.Random()
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        owners = [r["id"] for r in await conn.fetch("SELECT id FROM auth_user LIMIT 10")]
        stages = await conn.fetch("SELECT id, pipeline_id, kind FROM deals_stage")
        reasons = await conn.fetch("SELECT id, name FROM deals_lost_reason")
        async with conn.transaction():
            client_list = list(client_rows(rng, owners, clients))
            written = await copy_chunks(conn, "deals_client", CLIENT_COLUMNS, iter(client_list))
            emails = ((c[0], json.loads(c[3])[0]) for c in client_list)
            written += await copy_chunks(conn, "deals_client_email", ["client_id", "email"],
                                         emails)  # fmt: skip
            keys = [(c[0], c[8]) for c in client_list]
            dealt = await copy_chunks(conn, "deals_deal", DEAL_COLUMNS,
                                      deal_rows(rng, keys, stages, reasons, deals))  # fmt: skip
        seconds = time.perf_counter() - start
        return {"rows": written + dealt, "deals": dealt, "seconds": seconds,
                "copy_seconds": COPY_SECONDS[0]}  # fmt: skip
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--deals", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.dsn, args.clients, args.deals))))
