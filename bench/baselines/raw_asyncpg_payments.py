"""Baseline for scenario 12a: bare Starlette + an asyncpg pool on crm2's payments tables.

``POST /api/v1/payments/payments/{id}/allocations``: one ``INSERT … RETURNING`` of the
allocation row crm2 writes for the same JSON body (amount and currency parsed, the
payment and owner fixed at start-up), answered as orjson. No payment lookup, no
conditional UPDATE of the running sums, no commission rule, no outbox row, no
Idempotency-Key: that is what crm2's extra cost buys.

Configuration from the environment: ``BENCH_DSN`` (the crm2 database),
``BENCH_PAYMENT_ID`` and ``BENCH_OWNER_ID``. Served by the harness with one uvicorn
worker::

    python -m uvicorn --app-dir bench/baselines raw_asyncpg_payments:app --host 127.0.0.1
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COLUMNS = (
    "id, payment_id, kind, amount_minor, currency, received_at, method, reference, provider, "
    "external_id, statement_line_id, owner_id, created_by, created_at"
)
INSERT = (
    f"INSERT INTO payments_allocation ({COLUMNS}) VALUES "
    "($1, $2, 'payment', $3, $4, $5, '', '', 'manual', NULL, NULL, $6, $6, $5) "
    f"RETURNING {COLUMNS}"
)
DSN = os.environ["BENCH_DSN"]
PAYMENT_ID = uuid.UUID(os.environ.get("BENCH_PAYMENT_ID", str(uuid.UUID(int=0))))
OWNER_ID = uuid.UUID(os.environ.get("BENCH_OWNER_ID", str(uuid.UUID(int=0))))
POOL: dict[str, asyncpg.Pool] = {}


async def allocate(request: Request) -> Response:
    body: dict[str, Any] = orjson.loads(await request.body())
    minor = int(Decimal(body["amount"]).scaleb(2))
    now = datetime.now(UTC)
    async with POOL["pool"].acquire() as conn:
        row = await conn.fetchrow(
            INSERT, uuid.uuid4(), PAYMENT_ID, minor, body["currency"], now, OWNER_ID
        )
    return Response(orjson.dumps(dict(row), default=str), 201, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    POOL["pool"] = await asyncpg.create_pool(DSN, min_size=2, max_size=10)
    yield
    await POOL["pool"].close()


app = Starlette(
    routes=[
        Route("/api/v1/payments/payments/{payment_id}/allocations", allocate, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
